"""Experiments as config, deterministic bucketing, and the serving hook :class:`Experiments`.

An experiments file (YAML, validated by pydantic)::

    experiments:
      - name: decay-vs-baseline
        layer: ranking            # experiments of one layer never share a user; layers are independent
        salt: decay-2026-12       # change it to reshuffle users
        widgets: [pdp_related]    # default: every widget
        segments: [new, returning]
        traffic: 1.0              # share of the layer's users taking part
        holdout: 0.05             # of those, held back on the base settings (variant "holdout")
        start: 2026-12-01T00:00:00Z
        stop: 2026-12-15T00:00:00Z
        variants:
          - {name: control, weight: 50}
          - name: streaming_decay
            weight: 50
            overrides: {recent_view_decay: 0.6, widgets: {pdp_related: {boost_power: 0.5}}}

Bucketing: a user's place in a layer is ``hash(layer, user)`` (experiments of the layer own
disjoint ranges of it, in file order); inside an experiment ``hash(salt, user)`` picks the holdout or
a variant by weight. Both are BLAKE2b of the text, so an assignment is sticky across processes and
restarts, and two layers (different hash inputs) are independent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hotpath.errors import ConfigError
from hotpath.recs.settings import RecsSettings, WidgetRule

__all__ = [
    "OVERRIDABLE",
    "Variant",
    "Experiment",
    "ExperimentsFile",
    "Arm",
    "Assignment",
    "Experiments",
    "bucket",
    "parse_experiments",
    "variant_settings",
]

log = logging.getLogger(__name__)

OVERRIDABLE = frozenset(
    {
        "semantic_weight",
        "coview_weight",
        "recent_view_weight",
        "recent_view_decay",
        "recent_cat_weight",
        "coview_expand_weight",
        "expanded_cats_max",
        "widgets",
    }
)
"""Recs settings a variant may override: signal weights, decay, co-view expansion, widget rules.
Sizes of cached lists and TTLs are per replica, not per request, so they are not among them."""

HOLDOUT = "holdout"
_SCALE = float(1 << 64)


def bucket(salt: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by ``(salt, user_id)``: BLAKE2b-64 of ``salt \\x1f user``."""
    return _bucket(salt.encode() + b"\x1f", user_id.encode())


def _bucket(prefix: bytes, user: bytes, _blake2b=hashlib.blake2b, _from_bytes=int.from_bytes) -> float:
    return _from_bytes(_blake2b(prefix + user, digest_size=8).digest(), "big") / _SCALE


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    weight: float = Field(1.0, gt=0.0)
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Recs settings of this variant (keys of :data:`OVERRIDABLE`); ``coview: false`` is shorthand
    for no co-view expansion (``expanded_cats_max: 0``)."""

    @field_validator("overrides")
    @classmethod
    def _known(cls, v: dict[str, Any]) -> dict[str, Any]:
        v = dict(v)
        if "coview" in v:
            on = v.pop("coview")
            if not isinstance(on, bool):
                raise ValueError("coview must be true or false")
            if not on:
                v.setdefault("expanded_cats_max", 0)
        bad = sorted(set(v) - OVERRIDABLE)
        if bad:
            raise ValueError(f"cannot override {', '.join(bad)} (allowed: coview, {', '.join(sorted(OVERRIDABLE))})")
        if "widgets" in v and not isinstance(v["widgets"], dict):
            raise ValueError("widgets must map a widget name to rule fields")
        return v


class Experiment(_Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    layer: str = "default"
    salt: str = ""
    """Hash salt of the variant split (default: the name)."""
    widgets: list[str] | None = None
    segments: list[Literal["new", "returning"]] = Field(default_factory=lambda: ["new", "returning"])
    traffic: float = Field(1.0, gt=0.0, le=1.0)
    holdout: float = Field(0.0, ge=0.0, lt=1.0)
    start: datetime | None = None
    stop: datetime | None = None
    variants: list[Variant] = Field(min_length=2)

    @field_validator("start", "stop")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return v

    @model_validator(mode="after")
    def _check(self) -> "Experiment":
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if HOLDOUT in names:
            raise ValueError(f"{HOLDOUT!r} is reserved for the holdout group")
        if self.start and self.stop and self.stop <= self.start:
            raise ValueError("stop must be after start")
        return self

    @property
    def key(self) -> str:
        return self.salt or self.name

    @property
    def control(self) -> str:
        """The variant the others are compared with: one named ``control``, else the first."""
        names = [v.name for v in self.variants]
        return "control" if "control" in names else names[0]

    def expected_shares(self) -> dict[str, float]:
        """Expected share of each group among the experiment's users (holdout included)."""
        total = sum(v.weight for v in self.variants)
        out = {v.name: (1.0 - self.holdout) * v.weight / total for v in self.variants}
        if self.holdout > 0:
            out[HOLDOUT] = self.holdout
        return out

    def running(self, now: datetime) -> bool:
        return (self.start is None or self.start <= now) and (self.stop is None or now < self.stop)


class ExperimentsFile(_Frozen):
    experiments: list[Experiment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "ExperimentsFile":
        names = [e.name for e in self.experiments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"experiment names must be unique: {', '.join(dup)}")
        per_layer: dict[str, float] = {}
        for e in self.experiments:
            per_layer[e.layer] = per_layer.get(e.layer, 0.0) + e.traffic
        over = {k: v for k, v in per_layer.items() if v > 1.0 + 1e-9}
        if over:
            raise ValueError("traffic of a layer's experiments adds up to more than 1: " + ", ".join(f"{k}={v:g}" for k, v in over.items()))
        # two layers may reach the same request: they must not set the same setting
        for i, a in enumerate(self.experiments):
            for b in self.experiments[i + 1 :]:
                if a.layer == b.layer:
                    continue
                if a.widgets is not None and b.widgets is not None and not set(a.widgets) & set(b.widgets):
                    continue
                both = _touched(a) & _touched(b)
                if both:
                    raise ValueError(f"experiments {a.name} and {b.name} are in different layers and both set {', '.join(sorted(both))}")
        return self

    def get(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        from hotpath.errors import NotFound

        raise NotFound(f"no experiment named {name!r}", hint=f"known: {', '.join(e.name for e in self.experiments) or 'none'}")


def _touched(e: Experiment) -> set[str]:
    out: set[str] = set()
    for v in e.variants:
        for k, val in v.overrides.items():
            if k == "widgets":
                out |= {f"widgets.{w}.{f}" for w, rule in val.items() for f in (rule or {})}
            else:
                out.add(k)
    return out


def variant_settings(base: RecsSettings, overrides: Mapping[str, Any]) -> RecsSettings:
    """``base`` with a variant's overrides, validated. Widgets the variant leaves alone keep the very
    same rule objects (the service's precomputed per-widget terms stay in use for them)."""
    if not overrides:
        return base
    data = {name: getattr(base, name) for name in type(base).model_fields}
    widgets = dict(base.widgets)
    for k, v in overrides.items():
        if k != "widgets":
            data[k] = v
    for w, fields in (overrides.get("widgets") or {}).items():
        if w not in widgets:
            raise ValueError(f"widget {w!r} is not one of {', '.join(sorted(widgets))}")
        widgets[w] = WidgetRule.model_validate({**widgets[w].model_dump(), **(fields or {})})
    data["widgets"] = widgets
    return RecsSettings.model_validate(data)


def parse_experiments(data: Any, base: RecsSettings, *, source: str = "experiments") -> ExperimentsFile:
    """Validate an experiments document; every problem is named in one :class:`ConfigError`."""
    try:
        parsed = ExperimentsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None
    for e in parsed.experiments:
        if e.widgets is not None:
            unknown = sorted(set(e.widgets) - set(base.widgets))
            if unknown:
                raise ConfigError(f"{source}: experiment {e.name}: unknown widgets {', '.join(unknown)}")
        for v in e.variants:
            try:
                variant_settings(base, v.overrides)
            except (ValidationError, ValueError) as exc:
                msg = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in exc.errors()) if isinstance(exc, ValidationError) else str(exc)
                raise ConfigError(f"{source}: experiment {e.name} variant {v.name}: {msg}") from None
    return parsed


def _read(path: Path, base: RecsSettings) -> ExperimentsFile:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"experiments file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"experiments file {path} is not valid YAML: {exc}") from None
    return parse_experiments(data, base, source=str(path))


# --------------------------------------------------------------------------- serving hook
@dataclass(frozen=True, slots=True, eq=False)
class Arm:
    """One experiment's answer for a request (one object per experiment and variant of a config:
    compared and hashed by identity)."""

    experiment: str
    variant: str
    layer: str

    def to_json(self) -> dict[str, str]:
        return {"experiment": self.experiment, "variant": self.variant}


class Assignment:
    """Every experiment a request takes part in (at most one per layer), and the settings to serve it
    with (``None``: the base settings). Made once per combination of arms and shared: read-only."""

    __slots__ = ("arms", "settings", "_json")

    def __init__(self, arms: tuple[Arm, ...], settings: RecsSettings | None) -> None:
        self.arms = arms
        self.settings = settings
        self._json = tuple(a.to_json() for a in arms)

    @property
    def experiment(self) -> str | None:
        return self.arms[0].experiment if self.arms else None

    @property
    def variant(self) -> str | None:
        return self.arms[0].variant if self.arms else None

    def to_json(self) -> list[dict[str, str]]:
        return [dict(d) for d in self._json]

    def json_view(self) -> tuple[dict[str, str], ...]:
        """The arms' JSON form, shared between responses (do not modify)."""
        return self._json

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Assignment) and (self.arms, self.settings) == (other.arms, other.settings)

    def __hash__(self) -> int:
        return hash(self.arms)

    def __repr__(self) -> str:
        return f"Assignment(arms={self.arms!r}, settings={'base' if self.settings is None else 'variant'})"


NONE = Assignment((), None)


class _Compiled:
    """An experiments file turned into per-layer lookup tables and per-variant settings."""

    def __init__(self, parsed: ExperimentsFile, base: RecsSettings) -> None:
        self.parsed = parsed
        layers: dict[str, list] = {}
        for e in parsed.experiments:
            lo = sum(x[2] - x[1] for x in layers.get(e.layer, []))
            total = sum(v.weight for v in e.variants)
            cuts, acc = [], e.holdout
            for v in e.variants:
                acc += (1.0 - e.holdout) * v.weight / total
                cuts.append((acc, Arm(e.name, v.name, e.layer)))
            timed = e.start is not None or e.stop is not None
            widgets = frozenset(e.widgets) if e.widgets is not None else None
            layers.setdefault(e.layer, []).append((e, lo, lo + e.traffic, cuts, Arm(e.name, HOLDOUT, e.layer), widgets, frozenset(e.segments), timed))
        self.layers = [(f"layer\x1f{name}\x1f".encode(), [(*x, f"{x[0].key}\x1f".encode()) for x in exps]) for name, exps in layers.items()]
        self.settings: dict[tuple[str, ...], RecsSettings | None] = {}
        self.assignments: dict[tuple[Arm, ...], Assignment] = {}
        self.variant_overrides = {(e.name, v.name): v.overrides for e in parsed.experiments for v in e.variants}
        self.base = base

    def assignment(self, arms: tuple[Arm, ...]) -> Assignment:
        a = self.assignments.get(arms)
        if a is None:
            a = self.assignments[arms] = Assignment(arms, self.settings_for(arms))
        return a

    def settings_for(self, arms: tuple[Arm, ...]) -> RecsSettings | None:
        key = tuple(f"{a.experiment}/{a.variant}" for a in arms)
        if key in self.settings:
            return self.settings[key]
        merged: dict[str, Any] = {}
        for a in arms:
            for k, v in self.variant_overrides.get((a.experiment, a.variant), {}).items():
                if k == "widgets":
                    w = merged.setdefault("widgets", {})
                    for name, fields in v.items():
                        w.setdefault(name, {}).update(fields or {})
                else:
                    merged[k] = v
        out = variant_settings(self.base, merged) if merged else None
        self.settings[key] = out
        return out


class Experiments:
    """What a recs replica asks per request: :meth:`assign` (a few microseconds, no I/O but a
    ``stat`` of the file once per ``reload_check_s``).

    The file is re-read when its mtime changes; a file that became invalid is logged and the last good
    one is kept (``last_error`` says why), so a typo never stops serving. ``clock`` gives the wall
    time (start/stop), ``monotonic`` paces the mtime checks (both injectable for tests)."""

    def __init__(
        self,
        base: RecsSettings,
        path: Path | str | None = None,
        *,
        parsed: ExperimentsFile | None = None,
        reload_check_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.path = Path(path) if path is not None else None
        self.reload_check_s = reload_check_s
        self.clock, self.monotonic = clock, monotonic
        self.last_error: str | None = None
        self.reloads = 0
        self._mtime: int | None = None
        self._next_check = 0.0
        if parsed is None and self.path is not None:
            self._mtime = self.path.stat().st_mtime_ns if self.path.exists() else None
            parsed = _read(self.path, base)
            self._next_check = monotonic() + reload_check_s
        self._c = _Compiled(parsed or ExperimentsFile(), base)

    @classmethod
    def from_settings(cls, settings) -> "Experiments":
        """From the whole :class:`~hotpath.config.Settings` (``ab.experiments_file``, relative to runtime_dir)."""
        ab = settings.ab
        path = settings.in_runtime(ab.experiments_file) if ab.experiments_file is not None else None
        return cls(settings.recs, path, reload_check_s=ab.reload_check_s)

    @property
    def config(self) -> ExperimentsFile:
        return self._c.parsed

    def reload_if_changed(self) -> bool:
        """Re-read the file if its mtime changed; True when a new config took effect."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            self._fail(f"experiments file {self.path} cannot be read: {exc.strerror}")
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            self._c = _Compiled(_read(self.path, self.base), self.base)
        except ConfigError as exc:
            self._fail(exc.one_line())
            return False
        self.last_error = None
        self.reloads += 1
        log.info("experiments reloaded from %s: %s", self.path, ", ".join(e.name for e in self._c.parsed.experiments) or "none")
        return True

    def _fail(self, msg: str) -> None:
        if msg != self.last_error:
            log.error("%s; keeping the previous experiments", msg)
        self.last_error = msg

    def assign(self, user_id: str | None, widget: str, *, returning: bool | None = None) -> Assignment:
        """The experiments and variants of this request. Anonymous requests take part in none."""
        if self.path is not None:
            now_m = self.monotonic()
            if now_m >= self._next_check:
                self._next_check = now_m + self.reload_check_s
                self.reload_if_changed()
        c = self._c
        if user_id is None or not c.layers:
            return NONE
        segment = "returning" if returning else "new"
        now: datetime | None = None
        arms: list[Arm] = []
        uid = user_id.encode()
        for layer_prefix, exps in c.layers:
            pos = _bucket(layer_prefix, uid)
            for e, lo, hi, cuts, holdout_arm, widgets, segments, timed, prefix in exps:
                if not lo <= pos < hi:
                    continue
                if widgets is not None and widget not in widgets:
                    break
                if segment not in segments:
                    break
                if timed:
                    if now is None:
                        now = datetime.fromtimestamp(self.clock(), timezone.utc)
                    if not e.running(now):
                        break
                b = _bucket(prefix, uid)
                arm = holdout_arm
                if b >= e.holdout:
                    arm = cuts[-1][1]
                    for cut, a in cuts:
                        if b < cut:
                            arm = a
                            break
                arms.append(arm)
                break
        if not arms:
            return NONE
        return c.assignment(tuple(arms))


def load_experiments_file(path: Path | str, base: RecsSettings) -> ExperimentsFile:
    """Parse and validate a file (``hotpath ab report`` and tests)."""
    return _read(Path(path), base)

