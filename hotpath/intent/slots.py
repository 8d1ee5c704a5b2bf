"""Slot extraction by rules over tokens: who to dial, which team to summon, where.

Locations are normalised to ``<kind> <number|letter>``: ``loading dock four`` -> ``dock 4``,
``aisle five`` -> ``aisle 5``, ``Zone B`` / ``zone bravo`` -> ``zone b``, ``warehouse-B`` ->
``warehouse b``, ``dock #4`` / ``dock number 4`` -> ``dock 4``, ``line twenty one`` -> ``line 21``.
Named places without a number keep their name (``the cold room`` -> ``cold room``).
"""

from __future__ import annotations

import re
import unicodedata

from hotpath.intent.types import Intent, Slots

__all__ = ["extract_slots", "extract_location", "extract_person", "extract_team", "normalise_tokens"]

_UNITS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
          "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
          "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
          "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_ASR_NUMBERS = {"for": 4, "fore": 4, "to": 2, "too": 2, "ate": 8, "won": 1}
_NATO = {"alpha": "a", "alfa": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e",
         "foxtrot": "f", "golf": "g", "hotel": "h", "india": "i", "juliet": "j", "kilo": "k",
         "lima": "l", "mike": "m", "november": "n", "oscar": "o", "papa": "p", "quebec": "q",
         "romeo": "r", "sierra": "s", "tango": "t", "uniform": "u", "victor": "v", "whiskey": "w",
         "xray": "x", "yankee": "y", "zulu": "z"}
_KINDS = {  # spoken kind -> normalised kind
    "dock": "dock", "doc": "dock", "docks": "dock", "aisle": "aisle", "isle": "aisle", "aisles": "aisle",
    "zone": "zone", "zones": "zone", "warehouse": "warehouse", "bay": "bay", "gate": "gate",
    "line": "line", "door": "door", "level": "level", "floor": "level", "building": "building",
    "hall": "hall", "area": "area", "conveyor": "conveyor", "cell": "cell", "freezer": "freezer",
    "rack": "rack", "station": "station", "platform": "platform", "row": "row", "section": "section",
}
_NUMBER_KINDS = {"dock", "aisle", "bay", "gate", "line", "door", "level", "conveyor", "cell",
                 "freezer", "rack", "station", "platform", "row", "section"}
_PLACES = ["cold room", "mezzanine", "break room", "charging room", "battery room", "loading dock",
           "receiving", "shipping", "yard", "canteen", "front gate", "parking lot", "returns area",
           "compressor room", "control room", "stairwell", "roof", "freezer", "office"]
_DIAL_VERBS = {"call", "dial", "ring", "phone", "buzz", "contact", "reach", "page", "ping", "file",
               "col", "caul", "cool", "dile", "dyle", "gọi", "goi"}
_DIAL_LEADS = [("get", "me"), ("connect", "me", "to"), ("connect", "me", "with"), ("put", "me", "through", "to"),
               ("patch", "me", "through", "to"), ("talk", "to"), ("speak", "to"), ("speak", "with"),
               ("get", "hold", "of"), ("hook", "me", "up", "with"), ("call", "up"), ("dial", "up"),
               ("video", "call"), ("voice", "call"), ("make", "a", "call", "to"), ("place", "a", "call", "to"),
               ("start", "a", "call", "with"), ("give",), ("get",), ("raise",), ("try",)]
_STOP = {"at", "to", "in", "on", "over", "here", "there", "now", "please", "asap", "for", "about",
         "regarding", "right", "immediately", "quick", "thanks", "okay", "ok", "real", "again",
         "back", "up", "down", "out", "from", "meet", "come", "the",
         "a", "call", "near", "by", "into", "we", "i", "it", "is", "are", "needed", "and", "then",
         "so", "because", "cause", "it's", "with", "me"}
_FILLERS = {"hey", "watch", "ok", "okay", "um", "uh", "er", "hmm", "please", "quick", "yo", "alright",
            "so", "hi", "like", "can", "could", "you", "would", "will", "i", "we", "need", "to",
            "wanna", "want", "gotta", "let", "me", "just"}
_DETERMINERS = {"the", "a", "an", "our", "my", "some", "any", "that", "this", "your"}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).replace("đ", "d").replace("Đ", "D")
    return text.lower()


def normalise_tokens(text: str) -> list[str]:
    """Lower-case, accent-free word tokens; ``warehouse-B`` -> ``warehouse b``, ``#4`` -> ``4``."""
    text = _fold(text)
    text = re.sub(r"(?<=[a-z])-(?=[a-z0-9]\b)", " ", text)  # warehouse-b, dock-4
    text = re.sub(r"(?<=[a-z])(?=\d)", " ", text)  # dock4 -> dock 4
    text = text.replace("#", " ").replace("no.", "number")
    return re.findall(r"[a-z0-9']+", text)


def _read_number(tokens: list[str], i: int, allow_asr: bool) -> tuple[int | None, int]:
    """A number starting at tokens[i] -> (value, tokens used)."""
    if i >= len(tokens):
        return None, 0
    t = tokens[i]
    if t.isdigit():
        return int(t), 1
    if t in _TENS:
        if i + 1 < len(tokens) and tokens[i + 1] in _UNITS and 0 < _UNITS[tokens[i + 1]] < 10:
            return _TENS[t] + _UNITS[tokens[i + 1]], 2
        return _TENS[t], 1
    if t in _UNITS:
        return _UNITS[t], 1
    if allow_asr and t in _ASR_NUMBERS:
        return _ASR_NUMBERS[t], 1
    return None, 0


def _read_letter(tokens: list[str], i: int) -> str | None:
    if i >= len(tokens):
        return None
    t = tokens[i]
    if len(t) == 1 and t.isalpha():
        return t
    return _NATO.get(t)


def extract_location(text: str) -> str | None:
    tokens = normalise_tokens(text)
    for i, tok in enumerate(tokens):
        kind = _KINDS.get(tok)
        if kind is None:
            continue
        j = i + 1
        if j < len(tokens) and tokens[j] in {"number", "num", "no"}:
            j += 1
        value, used = _read_number(tokens, j, allow_asr=kind in _NUMBER_KINDS)
        if value is not None:
            return f"{kind} {value}"
        letter = _read_letter(tokens, j)
        ambiguous = letter in {"a", "i"} and kind in _NUMBER_KINDS and j + 1 < len(tokens)
        if letter is not None and not ambiguous:
            return f"{kind} {letter}"
    joined = " ".join(tokens)
    for place in _PLACES:
        if re.search(rf"\b{place}\b", joined):
            return place
    return None


def _phrase_after(tokens: list[str], start: int) -> str | None:
    words: list[str] = []
    for i in range(start, len(tokens)):
        tok = tokens[i]
        if tok in _STOP and words:
            break
        if tok in _STOP or tok in _DETERMINERS:
            continue
        if tok in _KINDS and (_read_number(tokens, i + 1, False)[0] is not None or _read_letter(tokens, i + 1)):
            break  # a location ("dock 4"), not part of a role ("dock manager")
        words.append(tok)
        if len(words) == 4:
            break
    return " ".join(words) or None


def extract_person(text: str) -> str | None:
    """Who to dial: the words after the call verb (``call technician nguyen`` -> ``technician nguyen``)."""
    tokens = normalise_tokens(text)
    best: int | None = None
    for lead in _DIAL_LEADS:
        n = len(lead)
        for i in range(len(tokens) - n + 1):
            if tuple(tokens[i:i + n]) == lead and (best is None or i + n > best) and n > 1:
                best = i + n
                break
    if best is None:
        for i, tok in enumerate(tokens):
            if tok in _DIAL_VERBS:
                best = i + 1
                break
    if best is None:  # "get carlos on the radio", "buzz ...": first content words
        start = 0
        while start < len(tokens) and tokens[start] in _FILLERS:
            start += 1
        best = start + 1 if start < len(tokens) and tokens[start] in {"get", "give", "try", "raise"} else start
    return _phrase_after(tokens, best)


_TEAM_WORDS = ["spill response team", "first aid team", "forklift team", "maintenance team",
               "cleaning crew", "cleanup crew", "loading crew", "packing team", "rigging crew",
               "night crew", "quality team", "safety team", "hazmat team", "spill team", "ehs team",
               "fire wardens", "floor lead", "shift supervisor", "it support", "maintenance",
               "security", "medics", "janitorial", "supervisor", "electrician", "technician", "tech",
               "mechanic", "forklift driver", "forklift", "pickers", "picker", "cleaner", "lead",
               "backup", "help", "hands", "quality", "reach truck", "it guys", "crew", "team"]
_ALIASES = {"grew": "crew", "crue": "crew", "teem": "team", "tea": "team", "maintain ants": "maintenance",
            "maintenants": "maintenance", "secure tea": "security", "securty": "security",
            "super visor": "supervisor", "supervise her": "supervisor", "fork lift": "forklift",
            "clean in": "cleaning", "cleanin": "cleaning", "yelp": "help", "elect rician": "electrician",
            "cleanup": "cleanup"}


def extract_team(text: str) -> str | None:
    """Which team to summon, normalised (``the cleaning grew`` -> ``cleaning crew``)."""
    joined = " " + " ".join(normalise_tokens(text)) + " "
    for wrong, right in _ALIASES.items():
        joined = joined.replace(f" {wrong} ", f" {right} ")
    for team in _TEAM_WORDS:
        m = re.search(rf"\b{team}\b", joined)
        if m:
            if team in {"help", "hands"} and "some" not in joined and "couple" not in joined and "extra" not in joined:
                continue
            return team
    return None


def extract_slots(text: str, intent: Intent | None = None) -> Slots:
    """Slots for ``text``; person for DIAL_PERSON, team for SUMMON_TEAM/CANCEL, location always."""
    location = extract_location(text)
    person = extract_person(text) if intent is Intent.DIAL_PERSON else None
    team = extract_team(text) if intent in (Intent.SUMMON_TEAM, Intent.CANCEL) else None
    return Slots(person=person, team=team, location=location)
