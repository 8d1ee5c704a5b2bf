"""Settings of the recommendation product (extended by the recs issue)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RecsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    semantic_weight: float = 0.6
    coview_weight: float = 0.4
