"""Settings of the intent model: where the model lives, routing thresholds, serving knobs.

Environment overrides nest with ``__``: ``HOTPATH_INTENT__THRESHOLD=0.9``,
``HOTPATH_INTENT__TENANT_THRESHOLDS='{"acme": 0.9}'``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["IntentSettings", "SHIPPED_MODEL_DIR"]

SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "intent"
"""The trained model that ships in the repository (``models/intent``)."""


class IntentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(0.85, ge=0.0, le=1.0)
    """Default routing threshold: a command runs locally only when its confidence is above it."""
    tenant_thresholds: dict[str, float] = Field(default_factory=dict)
    """Per-tenant override of ``threshold`` (tenant id -> threshold)."""
    local_intents: list[str] = Field(default_factory=list)
    """Labels of a custom label set (beyond the built-in commands) that run locally when confident;
    every other custom label goes to the cloud."""
    model_dir: Path | None = None
    """Directory of a trained model (model.onnx, vocab.txt, meta.json); None: the shipped model."""
    intra_op_threads: int = Field(1, ge=1, le=64)
    """onnxruntime threads per session (1: one core per replica)."""
    batch_max_size: int = Field(32, ge=1, le=1024)
    """Most utterances one batched model call takes (replica batching)."""
    batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0)
    """How long a replica waits for more requests before running a partial batch."""

    @field_validator("tenant_thresholds")
    @classmethod
    def _thresholds_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for tenant, t in v.items():
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"threshold of tenant {tenant!r} must lie in [0, 1], got {t}")
        return v

    def threshold_for(self, tenant: str | None = None) -> float:
        """The routing threshold of ``tenant`` (the default one when it has none)."""
        if tenant is None:
            return self.threshold
        return self.tenant_thresholds.get(tenant, self.threshold)

    def resolved_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else SHIPPED_MODEL_DIR
