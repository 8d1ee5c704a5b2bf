"""Settings of the intent model (extended by the intent issue)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class IntentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = 0.85
