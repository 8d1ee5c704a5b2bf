"""The intent interface shared by the intent model and the voice pipeline."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Intent", "COMMAND_INTENTS", "Slots", "IntentResult", "IntentClassifier"]


class Intent(str, Enum):
    """Intents of the industrial wearable domain. ``OOS`` is out-of-scope chatter."""

    DIAL_PERSON = "DIAL_PERSON"
    SUMMON_TEAM = "SUMMON_TEAM"
    EMERGENCY = "EMERGENCY"
    CANCEL = "CANCEL"
    GENERAL_QUERY = "GENERAL_QUERY"
    OOS = "oos"


COMMAND_INTENTS: frozenset[Intent] = frozenset(
    {Intent.DIAL_PERSON, Intent.SUMMON_TEAM, Intent.EMERGENCY, Intent.CANCEL}
)
"""Intents executed locally when confident; everything else goes to the cloud assistant."""


@dataclass(frozen=True, slots=True)
class Slots:
    """Slots pulled from the text, normalised (``"loading dock four"`` -> location ``"dock 4"``)."""

    person: str | None = None
    """A person's name or role to dial ("technician nguyen", "safety officer")."""
    team: str | None = None
    """A team to summon ("cleaning crew", "supervisor")."""
    location: str | None = None
    """A normalised place: ``dock 4``, ``aisle 5``, ``zone b``, ``warehouse b``."""


@dataclass(frozen=True, slots=True)
class IntentResult:
    """What the classifier made of one transcript."""

    text: str
    intent: Intent
    confidence: float
    """Calibrated probability of ``intent`` in [0, 1]."""
    slots: Slots = field(default_factory=Slots)
    scores: dict[str, float] = field(default_factory=dict)
    """Every intent's calibrated probability."""
    reason: str | None = None
    """Why the answer was not the model's (e.g. ``"empty transcript"``); None for a model answer."""

    def is_local_command(self, threshold: float) -> bool:
        """True when this should run as a local action rather than go to the cloud."""
        return self.intent in COMMAND_INTENTS and self.confidence > threshold

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (intent as its wire value, slots as a mapping)."""
        return {
            "text": self.text,
            "intent": self.intent.value,
            "confidence": self.confidence,
            "slots": {k: getattr(self.slots, k) for k in ("person", "team", "location")},
            "scores": dict(self.scores),
            "reason": self.reason,
        }


class IntentClassifier(abc.ABC):
    """Transcript -> intent. Implementations: the ONNX model, and a keyword rule fallback."""

    @abc.abstractmethod
    def predict(self, text: str) -> IntentResult: ...

    def predict_batch(self, texts: list[str]) -> list[IntentResult]:
        return [self.predict(t) for t in texts]
