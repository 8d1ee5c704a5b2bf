"""Settings of the streaming co-view job (extended by the streaming issue)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StreamingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shards: int = 2
