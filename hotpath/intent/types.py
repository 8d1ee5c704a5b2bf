"""The intent interface shared by the intent model and the voice pipeline."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Intent", "COMMAND_INTENTS", "OOS_LABEL", "Label", "IntentLabel", "label_of", "Slots", "IntentResult",
           "IntentClassifier"]


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

OOS_LABEL = Intent.OOS.value
"""The out-of-scope label of every label set (``oos``, in any case, in data files)."""


class Label(str):
    """An intent label that is not one of the built-in :class:`Intent` values (a tenant's own command,
    a benchmark's intent). A plain string with ``.value`` (itself), so code written against
    ``Intent`` members (``result.intent.value``) works for any label set; it never equals a member
    of :data:`COMMAND_INTENTS`, so a custom label is never run as a built-in command."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Label({str(self)!r})"


IntentLabel = Intent | Label
"""What a classifier answers: a built-in :class:`Intent` when the label is one, else a :class:`Label`."""

_BUILTIN = {i.value: i for i in Intent}


def label_of(name: str) -> IntentLabel:
    """The canonical label for ``name``: the built-in member when ``name`` is exactly one of the
    :class:`Intent` values (``oos`` in any case), else ``Label(name)``."""
    if name.lower() == OOS_LABEL:
        return Intent.OOS
    return _BUILTIN.get(name) or Label(name)


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
    intent: IntentLabel
    """A built-in :class:`Intent`, or a :class:`Label` of a model trained on another label set."""
    confidence: float
    """Calibrated probability of ``intent`` in [0, 1]."""
    slots: Slots = field(default_factory=Slots)
    scores: dict[str, float] = field(default_factory=dict)
    """Every intent's calibrated probability."""
    reason: str | None = None
    """Why the answer was not the model's (e.g. ``"empty transcript"``); None for a model answer."""

    @property
    def label(self) -> str:
        """The intent's wire value (``"DIAL_PERSON"``, ``"oos"``, ``"book_flight"``)."""
        return self.intent.value

    def is_local_command(self, threshold: float, local: frozenset[str] | set[str] | None = None) -> bool:
        """True when this should run as a local action rather than go to the cloud: the intent is a
        built-in command (or one of the extra labels in ``local``) and its confidence is above
        ``threshold``. Other labels of a custom label set go to the cloud (the safe default)."""
        if self.confidence <= threshold:
            return False
        return self.intent in COMMAND_INTENTS or (local is not None and self.intent.value in local)

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
