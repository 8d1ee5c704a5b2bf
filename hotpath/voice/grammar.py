"""The command grammar (JSGF) a site's pocketsphinx decoder is constrained by.

Built from the tenant's vocabulary: people and teams in its directory, the ``initial_prompt`` hint
words, place nouns with numbers and letters. Words the pronunciation dictionary lacks are left out
(``known`` decides), so a tenant's odd name never breaks the grammar.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

__all__ = ["command_grammar", "hint_phrases"]

_NUM_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
_DIGITS = {str(i + 1): w for i, w in enumerate(_NUM_WORDS)}


def hint_phrases(prompt: str) -> list[str]:
    """``"Emergency, Help, Alpha-7, Warehouse-B"`` -> ``["emergency", "help", "alpha seven", "warehouse b"]``."""
    out = []
    for part in prompt.split(","):
        words = re.findall(r"[a-z]+|\d+", part.lower().replace("-", " "))
        words = [_DIGITS.get(w, w) for w in words]
        if words:
            out.append(" ".join(words))
    return out


def _alts(phrases: Iterable[str], known: Callable[[str], bool]) -> str:
    keep = sorted({p for p in phrases if p and all(known(w) for w in p.split())})
    return " | ".join(keep) if keep else "<VOID>"


def command_grammar(
    *, people: Iterable[str], teams: Iterable[str], directory: Iterable[str], prompt: str, known: Callable[[str], bool]
) -> str:
    hints = hint_phrases(prompt)
    person = list(people) + list(directory) + [f"{t} {p}" for p in people for t in ("technician", "doctor", "mister")]
    team = list(teams) + [h for h in hints if h not in {"emergency", "help"}]
    return f"""#JSGF V1.0;
grammar commands;
public <command> = <dial> | <summon> | <emergency> | <cancel>;
<dial> = [please] (call | dial | phone | ring | get me) [the] <person> [please] [now];
<person> = {_alts(person, known)};
<summon> = [please | (can | could) you] [i | we] (need | send | get | summon | bring) [a | an | the | some] <team> [(to | at | in) [the] <place>] [here] [now] [please] [right away];
<team> = {_alts(team, known)};
<place> = [loading] dock <num> | aisle <num> | zone <letter> | warehouse <letter> | bay <num> | gate <num>;
<num> = {' | '.join(_NUM_WORDS)};
<letter> = a | b | c | d | e;
<emergency> = emergency [help] | help [help] | man down | fire [fire];
<cancel> = cancel [that | the call | it] | never mind | stop;
"""
