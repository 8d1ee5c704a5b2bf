"""Settings of the semantic refresh job (``HOTPATH_REFRESH__...``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RefreshSettings"]


class RefreshSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hot_since_s: float = Field(24 * 3600.0, gt=0)
    """A master viewed or ordered this recently is hot (the daily run's window)."""
    stale_after_days: float = Field(90.0, gt=0)
    """A row older than this is stale: flagged, and refreshed in the background (queued as hot)."""
    stale_per_run: int = Field(10_000, ge=0)
    """At most this many stale masters (oldest first) join one run's hot set."""
    neighbours: int = Field(20, ge=1, le=1000)
    """Size of a refreshed ``related_masters`` map."""
    min_score: float = Field(0.0, ge=-1.0, le=1.0)
    """Neighbours scoring below this cosine similarity are left out of the map."""
    exact_below: int = Field(50_000, ge=0)
    """Catalogs up to this many masters use exact search; larger ones an HNSW index."""
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(128, ge=8)
    batch_size: int = Field(64, ge=1, le=4096)
    """Titles per ONNX Runtime call (``map_batches`` batch size)."""
    encoders: int = Field(1, ge=1, le=64)
    """Size of the encoder actor pool (each holds one ONNX Runtime session)."""
    encoder_threads: int = Field(2, ge=1, le=64)
    """Intra-op threads of each encoder session (one CPU per actor is reserved in Ray)."""
    upsert_chunk: int = Field(2000, ge=1)
    inference_source: str = "semantic-refresh-v1"
    catalog_path: Path = Path("data/catalog")
    """The master catalog (``catalog.npz`` of ``hotpath catalog generate``); relative: under runtime_dir."""
    embeddings_path: Path = Path("data/refresh/embeddings.parquet")
    """Stored embeddings (master, title hash, vector): unchanged masters are not re-embedded."""
    daily_at: str = Field("03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """UTC time of the daily run for ``hotpath jobs schedule``."""
    micro_batch_every_s: float = Field(2 * 3600.0, ge=600.0, le=4 * 3600.0)
    """Interval of the micro-batches between daily runs (the design's 1-4 h)."""
    job_timeout_s: float = Field(6 * 3600.0, gt=0)
    job_python: str | None = None
    """Interpreter of the job's entrypoint on the cluster (None: the submitting CLI's own, right when the
    nodes are set up by the same scripts/bootstrap.sh; set it, e.g. ``python3``, when they differ)."""
