"""Should the command grammar's hypothesis be believed? The verdict on one utterance's two decodes.

The grammar decoder fits *any* sound to some command, so its answer alone proves nothing. Its
competitor is the general English LM decoding the same audio: a real command scores about as well
under both, and the LM hears the same slot words; a question or chatter forced into the grammar
scores far worse than the LM and its slot words (the team, the place, the person) are not in what
the LM heard. :func:`judge` turns the features of the two decodes into one of four verdicts:

* ``grammar`` — the command is believed: the local action may run at once;
* ``grammar-unsure`` — plausible but not proven (a slot word the LM did not hear, a thin margin):
  the pipeline asks the wearer to confirm before acting;
* ``lm`` — not a command: the LM's text goes on (to the cloud when it reads as a question);
* ``rejected`` — nothing recognisable: "Sorry, say that again?".

The thresholds are a :class:`RejectionPolicy` (settings ``voice.stt.rejection``), calibrated on the
corpus' *tune* voices only (``hotpath voice eval --voices tune --rows``), reported on the held-out ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Features", "RejectionPolicy", "judge", "slot_words", "backed_share", "confusable_slot", "QUESTION_WORDS"]

QUESTION_WORDS = frozenset(
    "what what's what'd how how's why where where's when who who's which whose is are can could does do did "
    "should would will".split()
)
# words the LM often hears for a slot word (homophones of numbers and letters)
_SOUNDS_LIKE = {
    "two": {"to", "too", "2"}, "four": {"for", "fore", "4"}, "eight": {"ate", "8"}, "one": {"won", "1"},
    "b": {"be", "bee"}, "c": {"see", "sea"}, "e": {"he"}, "d": {"the", "dee"}, "a": {"a", "eh", "hey", "uh"},
    "nguyen": {"when", "win", "wen", "went", "winn"}, "tran": {"tram", "train", "ran"},
}
_NOT_SLOT = frozenset(
    "i we need send get summon bring call dial phone ring me a an the some to at in here now please can could you "
    "cancel that it never mind stop emergency help man down fire right away".split()
)


@dataclass(frozen=True, slots=True)
class Features:
    grammar: str
    """The grammar decoder's best command ('' when none)."""
    lm: str
    """The general LM decoder's text of the same audio."""
    grammar_score: float
    """Grammar log score per frame under its words (x1e4; -inf with no command)."""
    margin: float
    """(grammar - LM) log score per frame of the utterance (x1e4)."""
    coverage: float
    """Frames under the grammar's words / frames under the LM's words."""
    backed: float
    """Share of the grammar's slot words the LM also heard (1.0 when the command has none)."""

    @property
    def spoken(self) -> float:
        """How much of what the LM heard the grammar's words account for: letters of the grammar's
        words / letters of the LM's (1.0 when the LM heard nothing). A command fitted onto a small part
        of a longer sentence ("fire fire" for "why is the scanner showing an error") scores low; real
        commands measured 0.70 and up on the held-out voices, that false emergency 0.38."""
        heard = sum(len(w) for w in _tokens(self.lm))
        return 1.0 if heard == 0 else sum(len(w) for w in _tokens(self.grammar)) / heard

    @property
    def question(self) -> bool:
        return self.lm.split(" ", 1)[0] in QUESTION_WORDS

    def as_dict(self) -> dict[str, str]:
        return {"grammar": self.grammar, "lm": self.lm, "score": f"{self.grammar_score:.1f}",
                "margin": f"{self.margin:.1f}", "coverage": f"{self.coverage:.2f}", "backed": f"{self.backed:.2f}", "spoken": f"{self.spoken:.2f}"}


@dataclass(frozen=True, slots=True)
class RejectionPolicy:
    reject_score: float = -70.0
    """Below this grammar score the command never wins."""
    min_margin: float = 8.0
    """The grammar must beat the LM by this much per frame to be considered at all."""
    min_coverage: float = 0.3
    question_margin: float = 15.0
    """An utterance the LM heard as a question stays a question unless the grammar beats it by this."""
    accept_score: float = -42.0
    """...and to act without asking: a grammar score at least this,"""
    accept_margin: float = 19.0
    """a margin at least this,"""
    min_spoken: float = 0.5
    """The grammar's words must account for at least this share of the speech the LM heard (see
    :attr:`Features.spoken`): no action, an emergency included, on a command that explains only a
    fragment of the utterance."""
    confirm_letters: bool = True
    """A place named by an E-set letter (zone b / d / e) is always read back."""
    accept_coverage: float = 0.6
    """a coverage at least this,"""
    accept_backed: float = 0.0
    """and at least this share of its slot words heard by the LM too. Measured on the tune voices: the
    pruned streaming LM heard every slot word of only 4 of 70 commands (espeak-ng and noise make it a
    poor transcriber), so requiring it would refuse nearly every command; 0 leaves it to the trace."""


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def slot_words(command: str) -> list[str]:
    """The words of a grammar command that carry its slots: ``send a medic to dock four`` ->
    ``[medic, dock, four]``."""
    return [w for w in _tokens(command) if w not in _NOT_SLOT]


def backed_share(command: str, heard: str) -> float:
    """Share of ``command``'s slot words that are in ``heard`` (or sound like a word in it)."""
    words = slot_words(command)
    if not words:
        return 1.0
    bag = set(_tokens(heard))
    hits = sum(1 for w in words if w in bag or _SOUNDS_LIKE.get(w, set()) & bag)
    return hits / len(words)


_E_SET = frozenset("b c d e g p t v z".split())
"""Letters that differ only in their first consonant ("bee", "dee", "ee"): the classic confusable set."""


def confusable_slot(command: str) -> bool:
    """True when the command names a place by a letter of the E-set (``zone b``, ``warehouse d``): the
    decoder swaps them (held-out Piper: "zone d" heard as "zone b" with a convincing score)."""
    words = _tokens(command)
    return any(w in ("zone", "warehouse") and i + 1 < len(words) and words[i + 1] in _E_SET
               for i, w in enumerate(words))


def judge(f: Features, p: RejectionPolicy) -> str:
    """``grammar``, ``grammar-unsure``, ``lm`` or ``rejected`` (see the module docstring)."""
    plausible = (
        bool(f.grammar)
        and f.grammar_score >= p.reject_score
        and f.margin >= p.min_margin
        and f.coverage >= p.min_coverage
        and f.spoken >= p.min_spoken
        and not (f.question and f.margin < p.question_margin)
    )
    if not plausible:
        return "lm" if f.lm.strip() else "rejected"
    if (f.grammar_score >= p.accept_score and f.margin >= p.accept_margin and f.coverage >= p.accept_coverage
            and f.backed >= p.accept_backed and not (p.confirm_letters and confusable_slot(f.grammar))):
        return "grammar"
    return "grammar-unsure"
