"""Settings of the voice edge (extended by the voice issue)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = "demo"
