"""The command grammar (JSGF) a site's pocketsphinx decoder is constrained by.

Compiled from the tenant's command context (:mod:`hotpath.voice.context`; the default is
``contexts/industrial.yaml``), with the tenant's own vocabulary in its extensible slot types: people
and teams in its directory, the ``initial_prompt`` hint words. Words the pronunciation dictionary
lacks are left out (``known`` decides), so a tenant's odd name never breaks the grammar.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from hotpath.voice.context import DEFAULT_CONTEXT, Context, load_context
from hotpath.voice.context_compile import jsgf

__all__ = ["command_grammar", "hint_phrases", "tenant_values", "cached_context"]

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


@lru_cache(maxsize=16)
def _cached(path: str, mtime: float) -> Context:
    return load_context(path)


def cached_context(path: str | Path | None = None) -> Context:
    """The context at ``path`` (default: the industrial one), loaded once per file version."""
    p = Path(path) if path is not None else DEFAULT_CONTEXT
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = -1.0
    return _cached(str(p), mtime)


def tenant_values(*, people: Iterable[str], teams: Iterable[str], directory: Iterable[str], prompt: str) -> dict[str, list[str]]:
    """The tenant's settings as values of the context's extensible slot types ``person`` and ``team``."""
    people = list(people)
    hints = hint_phrases(prompt)
    person = people + list(directory) + [f"{t} {p}" for p in people for t in ("technician", "doctor", "mister")]
    team = list(teams) + [h for h in hints if h not in {"emergency", "help"}]
    return {"person": person, "team": team}


def command_grammar(
    *, people: Iterable[str], teams: Iterable[str], directory: Iterable[str], prompt: str, known: Callable[[str], bool],
    context: Context | str | Path | None = None,
) -> str:
    ctx = context if isinstance(context, Context) else cached_context(context)
    return jsgf(ctx, known=known, values=tenant_values(people=people, teams=teams, directory=directory, prompt=prompt))
