"""Settings of the streaming co-view job and of user recent interests.

Environment overrides nest with ``__``: ``HOTPATH_STREAMING__SHARDS=4``,
``HOTPATH_STREAMING__WINDOW_KIND=session``. Times are in seconds here; the domain works in ms.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["StreamingSettings", "WindowKind", "LatePolicy", "Placement"]

WindowKind = Literal["sliding", "session"]
LatePolicy = Literal["drop", "apply"]
Placement = Literal["any", "spread"]

DAY_S = 86_400.0


class StreamingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # ---------------------------------------------------------------- topology
    shards: int = Field(2, ge=1, le=256)
    """Shard actors; keys (categories) are hash-partitioned over them, event-log partitions too."""
    topic: str = "views"
    """Event-log topic of view (and order) events."""
    partitions: int = Field(4, ge=1, le=1024)
    """Partitions of ``topic`` when the job creates it (events are keyed by user id)."""
    key_prefix: str = ""
    """Prefix of every Redis key and dimension-store row id the job writes (tests use a unique one)."""
    job_id: str = "coview"
    """Stable id of the stateful job: names its checkpoint files and Ray actors."""
    placement: Placement = "any"
    """Where the shard actors run. ``any``: wherever Ray puts them (one node: all on it).
    ``spread``: one bundle per shard in a placement group with Ray's ``SPREAD`` strategy (the shards
    on as many nodes as there are, those offering ``placement_resource`` when it is set); when a
    node dies, its bundles (and shards) move to the surviving nodes. The driver runs on the node
    that started the job. A node joining later gets shards when the job is next started anew
    (``hotpath coview stop`` removes the placement group)."""
    placement_resource: str | None = Field(None, min_length=1, max_length=100)
    """With ``spread``: each shard's bundle holds 0.001 of this Ray custom resource (``ray start
    --resources='{"coview": 1}'``) instead of 0.001 CPU, so only nodes offering it take shards,
    restarted ones too."""

    # ---------------------------------------------------------------- windows (event time)
    window_kind: WindowKind = "sliding"
    window_s: float = Field(900.0, gt=0)
    """Sliding window size (15 min)."""
    slide_s: float = Field(300.0, gt=0)
    """Sliding window slide (5 min); also the decay period of both window kinds."""
    session_gap_s: float = Field(1800.0, gt=0)
    """Session windows close after this much event-time silence of a user (30 min)."""
    watermark_delay_s: float = Field(5.0, ge=0)
    """Bounded out-of-orderness: watermark = newest event time of the partition minus this."""
    allowed_lateness_s: float = Field(60.0, ge=0)
    """A window fires once the watermark passes its end plus this; later events are late."""
    late_policy: LatePolicy = "drop"
    """Late events: ``drop`` (counted, sent to the late stream) or ``apply`` (counted, re-timed to the watermark)."""
    idle_advance_s: float | None = None
    """When set, an idle partition's watermark advances with the (injectable) wall clock after this
    many seconds of silence. Off by default: it makes results depend on timing, not only on events."""
    max_keys_per_window: int = Field(50, ge=2, le=10_000)
    """Distinct keys one user window contributes (first seen win); bounds pairs per window."""

    # ---------------------------------------------------------------- scores
    decay: float = Field(0.95, gt=0, le=1)
    """Related-key scores are multiplied by this once per decay period (``slide_s``)."""
    top_k: int = Field(20, ge=1, le=1000)
    min_score: float = Field(0.0, ge=0)
    """Related keys scored below this after decay are dropped."""
    max_keys_per_shard: int = Field(200_000, ge=1)
    """Bound on keys held by one shard; the least recently updated go first."""

    # ---------------------------------------------------------------- user recent interests
    recent_ttl_s: float = Field(3 * DAY_S, ge=DAY_S, le=7 * DAY_S)
    """TTL of ``user:recent_cats:{uid}`` (1 to 7 days); also how long a user's state is kept."""
    recent_decay: float = Field(0.95, gt=0, le=1)
    recent_decay_period_s: float = Field(3600.0, gt=0)
    """Recent-interest weights are multiplied by ``recent_decay`` per this much event time."""
    recent_min_score: float = Field(0.05, ge=0)
    """Recent interests weighing less than this are pruned."""
    recent_max_cats: int = Field(50, ge=1, le=10_000)
    """Categories held per user; a user going over loses its worst, down to ``recent_max_cats`` less a fifth."""
    max_users_per_partition: int = Field(500_000, ge=1)
    """Bound on users held per event-log partition; the least recently seen go first."""

    # ---------------------------------------------------------------- runtime
    max_records_per_step: int = Field(20_000, ge=1)
    """Records one shard reads per partition per step (bounds work in flight)."""
    read_timeout_s: float = Field(0.05, ge=0)
    checkpoint_interval_s: float = Field(15.0, ge=0)
    """Interval of the (asynchronous) checkpoints: state + offsets together (plus the dimension rows,
    every ``dimension_interval_s``). Longer: less snapshot and dimension-store work per event,
    a longer replay after a failure (``checkpoint_interval_s`` of events at most)."""
    min_step_s: float = Field(0.15, ge=0)
    """While the job keeps up (no shard read a full ``max_records_per_step`` batch), rounds start at
    most this often, so a step takes what arrived meanwhile instead of a few ms of events (per-step
    costs amortised over more events); when behind, rounds follow each other at once. 0: no pacing."""
    sink_queue_max: int = Field(8, ge=1)
    """Sink batches queued per shard; a slow sink blocks the shard when the queue is full."""
    dimension_batch: int = Field(500, ge=1)
    """Dimension-store rows written per call."""
    dimension_interval_s: float = Field(60.0, ge=0)
    """The dimension store gets the changed keys' top-K (as of then) at the first checkpoint after
    this long, and at every synchronous one (on stop): it is not on the freshness path, Redis is,
    and every key changes each epoch. Keys not yet written stay in the checkpointed state, so a
    restore writes them too. 0: at every checkpoint."""
    dimension_spread_s: float = Field(10.0, ge=0)
    """Those rows are written in chunks of 100 spread over this long (at most half of
    ``dimension_interval_s``), not at once: thousands of rows at once take the dimension store a
    core for a second or two, which the shards on the same machine feel as a stall. A synchronous
    checkpoint (on stop) hurries them. 0: at once."""
    order_batch: int = Field(5000, ge=1)
    """Order events are written to the rollup store at every checkpoint, and sooner once a shard
    holds this many."""
    sink_interval_s: float = Field(0.25, ge=0)
    """While a shard is busy, its Redis writes are gathered for up to this long (a key written once
    with its newest value instead of once a step); 0 writes every step. Idle steps and checkpoints
    always write. Only when, never what: every write is a full replacement."""
    recent_interval_s: float = Field(0.5, ge=0)
    """The same for ``user:recent_cats`` writes while busy: a user is written at most once per this
    long, however many of its views arrived meanwhile (the categories those views changed, or its
    whole set when it is new or was compacted: see :mod:`hotpath.coview.interests`)."""
    sink_backlog_interval_s: float = Field(2.0, ge=0)
    """The same while the shard works through a backlog (a step read ``max_records_per_step`` from a
    partition): each key is then written at most once per this long instead of once per
    ``sink_interval_s``; nobody waits on those writes but the end of the backlog."""

    @model_validator(mode="after")
    def _consistent(self) -> StreamingSettings:
        if self.window_kind == "sliding":
            ratio = self.window_s / self.slide_s
            if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
                raise ValueError(f"window_s ({self.window_s}) must be a whole multiple of slide_s ({self.slide_s})")
        return self

    # ------------------------------------------------------------- derived (ms, the domain's unit)
    def window_spec(self):  # -> hotpath.coview.windows.WindowSpec (imported lazily: no cycle)
        from hotpath.coview.windows import WindowSpec

        return WindowSpec(
            kind=self.window_kind,
            size_ms=int(self.window_s * 1000),
            slide_ms=int(self.slide_s * 1000),
            gap_ms=int(self.session_gap_s * 1000),
            delay_ms=int(self.watermark_delay_s * 1000),
            lateness_ms=int(self.allowed_lateness_s * 1000),
            late_policy=self.late_policy,
            max_keys=self.max_keys_per_window,
        )
