"""The per-device confirmation dialog: "Send a medic to dock nine?" -> yes / no / repeat / timeout.

A :class:`Dialog` is a small state machine the pipeline owns per device; it is driven by the
utterances of that device and by a clock that can be injected (tests step it by hand). It holds at
most one :class:`Pending` question:

* ``confirm`` — a consequential action waits for "yes"; "no" cancels it, "repeat" asks again, silence
  past ``timeout_s`` cancels it (the pipeline says so), and any other utterance is a barge-in: the
  question is dropped and the new utterance is handled as itself;
* ``undo`` — an EMERGENCY already acted; for ``timeout_s`` a "cancel" (or "no") calls it off.

Nothing here speaks or publishes: :meth:`answer` and :meth:`expire` return what happened and the
pipeline acts on it, so any shell can host the dialog.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Literal

__all__ = ["Dialog", "Pending", "Answer", "classify_answer"]

Answer = Literal["yes", "no", "repeat", "other"]
_YES = {"yes", "yeah", "yep", "yup", "correct", "confirm", "confirmed", "affirmative", "right", "sure", "okay", "ok"}
_NO = {"no", "nope", "negative", "cancel", "stop", "wrong", "don't", "abort"}
_REPEAT = ("repeat", "say again", "say that again", "pardon", "come again", "what")


def classify_answer(text: str) -> Answer:
    """``"yes please"`` -> yes, ``"no cancel that"`` -> no, ``"repeat"`` -> repeat, else other."""
    words = re.findall(r"[a-z']+", text.lower())
    if not words or len(words) > 4:
        return "other"
    joined = " ".join(words)
    if words[0] in _NO or joined.startswith("never mind"):
        return "no"
    if words[0] in _YES or joined in ("do it", "go ahead", "send it", "please do"):
        return "yes"
    if any(joined.startswith(r) for r in _REPEAT):
        return "repeat"
    return "other"


@dataclass
class Pending:
    kind: Literal["confirm", "undo"]
    prompt: str
    """What was asked ("Send a medic to dock 9?") or said ("Emergency alert sent...")."""
    asked_at: float
    utterance_id: str
    payload: object = None
    """What to do on yes (the pipeline's route), or what to call off on cancel."""
    repeats: int = 0


@dataclass
class Dialog:
    timeout_s: float = 6.0
    clock: Callable[[], float] = time.monotonic
    max_repeats: int = 2
    pending: Pending | None = field(default=None)

    def ask(self, prompt: str, utterance_id: str, payload: object) -> Pending:
        """Ask for a confirmation (replaces any pending question)."""
        self.pending = Pending("confirm", prompt, self.clock(), utterance_id, payload)
        return self.pending

    def offer_undo(self, said: str, utterance_id: str, payload: object) -> Pending:
        self.pending = Pending("undo", said, self.clock(), utterance_id, payload)
        return self.pending

    def expire(self) -> Pending | None:
        """The pending question if it timed out (it is cleared), else None."""
        p = self.pending
        if p is not None and self.clock() - p.asked_at >= self.timeout_s:
            self.pending = None
            return p
        return None

    def answer(self, text: str) -> tuple[Answer, Pending] | None:
        """Apply an utterance to the pending question: (``yes``|``no``|``repeat``|``other``, it), or
        None when nothing is pending. ``yes`` and ``no`` clear it, ``other`` (a barge-in) too."""
        self.expire()  # the pipeline takes a timed-out question with expire() first
        p = self.pending
        if p is None:
            return None
        a = classify_answer(text)
        if p.kind == "undo" and a in ("yes", "repeat"):
            a = "other"  # an emergency is only ever called off
        if a == "repeat" and p.repeats < self.max_repeats:
            p.repeats += 1
            p.asked_at = self.clock()
            return a, p
        if a == "repeat":
            a = "no"
        self.pending = None
        return a, p
