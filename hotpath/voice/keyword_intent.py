"""A keyword-rule intent classifier behind :class:`~hotpath.intent.types.IntentClassifier`.

The stand-in until the ONNX model of ``hotpath.intent`` lands, and the fallback when it is absent.
Rules are deliberately plain: a verb family decides the intent, the words after it fill the slots,
and the confidence says how much of the sentence the rule explained (a rule that matched only a verb
buried in a question stays under the routing threshold and goes to the cloud).
"""

from __future__ import annotations

import re

from hotpath.intent.types import Intent, IntentClassifier, IntentResult, Slots

__all__ = ["KeywordIntentClassifier", "normalise_location", "NUMBERS"]

NUMBERS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "to": "2", "too": "2", "three": "3", "four": "4",
    "for": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
    "eleven": "11", "twelve": "12",
}
_LETTERS = {"bee": "b", "be": "b", "see": "c", "sea": "c", "dee": "d", "ay": "a", "eh": "a", "e": "e"}
_PLACE_NOUNS = ("dock", "aisle", "zone", "warehouse", "bay", "gate", "line", "area")
_QUESTION = {"what", "how", "why", "where", "when", "who", "which", "is", "are", "can", "could", "does", "do", "should"}
_DIAL = {"call", "dial", "phone", "ring"}
_SUMMON = {"need", "send", "summon", "bring", "get"}
_EMERGENCY = ("emergency", "man down", "fire", "help help", "mayday")
_CANCEL = ("cancel", "never mind", "nevermind", "stop the call", "abort")
_FILLER = {"a", "an", "the", "some", "me", "please", "now", "here", "right", "away", "immediately", "over", "up", "i", "we"}
_SCORES_OTHER = 0.02


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def normalise_location(words: list[str]) -> tuple[str | None, int, int]:
    """Find ``<place noun> <number|letter>`` in words; returns (``"dock 4"``, start, end) or None."""
    for i, w in enumerate(words):
        if w in _PLACE_NOUNS and i + 1 < len(words):
            nxt = words[i + 1]
            val = NUMBERS.get(nxt, nxt if nxt.isdigit() else None)
            if w in ("zone", "warehouse", "area", "line") and val is None:
                val = _LETTERS.get(nxt, nxt if len(nxt) == 1 else None)
            if val is not None:
                start = i - 1 if i > 0 and words[i - 1] == "loading" else i
                return f"{w} {val}", start, i + 2
    return None, -1, -1


class KeywordIntentClassifier(IntentClassifier):
    """Verb rules + slot spans. Deterministic, microseconds per call."""

    def predict(self, text: str) -> IntentResult:
        words = _words(text)
        joined = " ".join(words)
        location, ls, le = normalise_location(words)
        intent, conf, slots = Intent.OOS, 0.5, Slots(location=location)
        if not words:
            return self._result(text, Intent.OOS, 0.9, slots)
        question = words[0] in _QUESTION or text.strip().endswith("?")
        if any(p in joined for p in _CANCEL) and len(words) <= 4:
            intent, conf = Intent.CANCEL, 0.95
        elif any(p in joined for p in _EMERGENCY) and not question:
            intent, conf = Intent.EMERGENCY, 0.95
        else:
            verb = next((i for i, w in enumerate(words) if w in _DIAL | _SUMMON), None)
            if verb is not None and not (question and verb > 0):
                rest = [w for j, w in enumerate(words[verb + 1 :], verb + 1) if not (ls <= j < le)]
                head: list[str] = []
                for w in rest:
                    if w in ("to", "at", "in", "on", "for") and head:
                        break
                    if w not in _FILLER:
                        head.append(w)
                target = " ".join(head) or None
                explained = (1 + len(head) + (le - ls if location else 0)) / max(1, len(words))
                conf = 0.9 + 0.09 * min(1.0, explained) if target else 0.6
                if words[verb] in _DIAL:
                    intent, slots = Intent.DIAL_PERSON, Slots(person=target, location=location)
                else:
                    intent, slots = Intent.SUMMON_TEAM, Slots(team=target, location=location)
            elif question or len(words) >= 3:
                intent, conf = Intent.GENERAL_QUERY, 0.9 if question else 0.7
        return self._result(text, intent, conf, slots)

    @staticmethod
    def _result(text: str, intent: Intent, conf: float, slots: Slots) -> IntentResult:
        rest = (1.0 - conf) / (len(Intent) - 1)
        scores = {i.value: (conf if i is intent else rest) for i in Intent}
        return IntentResult(text=text, intent=intent, confidence=conf, slots=slots, scores=scores)
