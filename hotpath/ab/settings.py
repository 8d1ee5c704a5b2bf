"""Settings of the A/B area (``HOTPATH_AB__...`` or the ``ab:`` section of the YAML file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AbSettings", "AmplitudeSettings"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmplitudeSettings(_Frozen):
    """Where and how ``hotpath ab export`` sends events (Amplitude's HTTP V2 API)."""

    url: str = "https://api2.amplitude.com/2/httpapi"
    api_key_env: str = "AMPLITUDE_API_KEY"
    """The API key is read from this environment variable, never from a file in the repository."""
    batch_events: int = Field(1000, ge=1, le=2000)
    """Events per request (Amplitude takes up to 2,000 and 1 MB; a 413 halves the batch)."""
    max_attempts: int = Field(6, ge=1, le=50)
    backoff_s: float = Field(0.5, ge=0.0)
    """First retry delay; doubled per attempt (with jitter), capped by ``max_backoff_s``."""
    max_backoff_s: float = Field(30.0, ge=0.0)
    timeout_s: float = Field(10.0, gt=0.0)
    queue_dir: Path = Path("data/amplitude-queue")
    """Disk queue of events not yet accepted (relative paths live in runtime_dir)."""
    queue_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    """The queue refuses new events past this size (an error, never a silent drop)."""


class AbSettings(_Frozen):
    experiments_file: Path | None = None
    """YAML file of experiments (see docs/experiments.md); ``None``: no experiment runs."""
    reload_check_s: float = Field(1.0, ge=0.0)
    """How often the serving path looks at the file's mtime (a changed file is reloaded)."""
    exposure_topic: str = "ab.exposures"
    outcome_topic: str = "ab.outcomes"
    topic_partitions: int = Field(4, ge=1, le=1024)
    flush_interval_s: float = Field(0.5, gt=0.0)
    """Exposures are appended to the event log in batches, at least this often, off the request path."""
    flush_batch: int = Field(2000, ge=1)
    """A batch this large is flushed at once."""
    max_pending: int = Field(200_000, ge=1)
    """Exposures held while the event log is slow or down; past this, new ones are dropped and counted."""
    attribution_window_s: float = Field(3600.0, gt=0.0)
    """An outcome counts for the latest exposure of its user at most this long before it."""
    session_gap_s: float = Field(1800.0, gt=0.0)
    """A user's exposures more than this far apart start a new session."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    srm_alpha: float = Field(0.001, gt=0.0, lt=1.0)
    """Sample-ratio mismatch is flagged below this p-value (a strict threshold: it is checked often)."""
    sequential_tau: float = Field(0.1, gt=0.0)
    """Mixture scale of the always-valid (mSPRT) test, relative to the control's rate."""
    amplitude: AmplitudeSettings = AmplitudeSettings()
