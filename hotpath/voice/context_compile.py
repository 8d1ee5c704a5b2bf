"""A :class:`~hotpath.voice.context.Context` compiled: the STT grammar, the slot parser, training data.

* :func:`jsgf` — the JSGF command grammar the pocketsphinx decoder is constrained by. The general
  English LM stays its competitor (:mod:`hotpath.voice.rejection`): the grammar only proposes.
* :class:`Matcher` — text -> (intent, normalised slots) by the same expressions, so typed text and
  speech agree: ``"send a medic to loading dock four"`` -> SUMMON_TEAM ``{team: medic, location: dock 4}``.
* :func:`training_rows` — expanded expressions + paraphrase noise as the intent model's JSONL rows.
* :func:`render_action` / :func:`render_reply` — an intent's action and spoken reply filled from slots.

Plain domain code, no network.
"""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from hotpath.voice.context import (
    DEFAULT_CONTEXT, NATO, NUMBER_WORDS, TENS, Alt, Context, SlotRef, SlotType, SlotValue, Seq, Word, load_context,
    parse_expression,
)

__all__ = ["jsgf", "Matcher", "Match", "expand", "training_rows", "write_training", "render_action", "render_reply",
           "compile_context", "Compiled", "number_words", "tokens", "OOS_LINES", "action_topic_filters",
           "tenant_action_topics"]

_TEMPLATE = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


def number_words(n: int) -> str:
    """``21`` -> ``twenty one`` (0..999)."""
    if n < 20:
        return NUMBER_WORDS[n]
    if n < 100:
        tens = next(w for w, v in TENS.items() if v == n // 10 * 10)
        return tens + ("" if n % 10 == 0 else " " + NUMBER_WORDS[n % 10])
    rest = n % 100
    return f"{NUMBER_WORDS[n // 100]} hundred" + ("" if rest == 0 else " " + number_words(rest))


def _read_number(words: list[str]) -> int | None:
    if len(words) == 1 and words[0].isdigit():
        return int(words[0])
    total, cur = 0, 0
    for w in words:
        if w in NUMBER_WORDS:
            cur += NUMBER_WORDS.index(w)
        elif w in TENS:
            cur += TENS[w]
        elif w == "hundred":
            cur *= 100
        elif w != "and":
            return None
    return total + cur


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; ``warehouse-B`` -> ``warehouse b``, ``dock4`` -> ``dock 4``."""
    text = text.lower()
    text = re.sub(r"(?<=[a-z])-(?=[a-z0-9])", " ", text)
    text = re.sub(r"(?<=[a-z])(?=\d)", " ", text)
    return re.findall(r"[a-z0-9']+", text)


def _slot_values(ctx: Context, values: Mapping[str, Iterable[str]] | None) -> dict[str, SlotType]:
    """Slot types, with the tenant's own values for the extensible ones (people, teams)."""
    out = dict(ctx.slots)
    for name, vals in (values or {}).items():
        t = out.get(name)
        if t is not None and t.extensible:
            out[name] = t.model_copy(update={"values": [SlotValue(value=v) for v in dict.fromkeys(vals)]})
    return out


def _number_forms(t: SlotType) -> list[str]:
    return [number_words(n) for n in range(t.min, t.max + 1)]


def _letter_forms(t: SlotType) -> list[str]:
    out = list(t.letters)
    if t.nato:
        out += [w for w, c in NATO.items() if c in t.letters]
    return out


# ---------------------------------------------------------------------------------------- JSGF
def jsgf(ctx: Context, *, known: Callable[[str], bool] | None = None,
         values: Mapping[str, Iterable[str]] | None = None, name: str = "commands") -> str:
    """The context as a JSGF grammar; phrases with a word ``known`` refuses are left out."""
    ok = known or (lambda w: True)
    types = _slot_values(ctx, values)
    rules: dict[str, str] = {}

    def rule_name(kind: str, n: str) -> str:
        return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', n)}"

    def expr(e) -> str | None:
        if isinstance(e, Word):
            return e.text if ok(e.text) else None
        if isinstance(e, SlotRef):
            slot_rule(e.type)
            return f"<{rule_name('slot', e.type)}>"
        if isinstance(e, Seq):
            parts = [expr(i) for i in e.items]
            parts = [p for p in parts if p != ""]
            if any(p is None for p in parts):
                return None
            return " ".join(parts) if parts else ""
        opts = [o for o in (expr(x) for x in e.options) if o]
        if not opts:
            return "" if e.optional else None
        inner = " | ".join(opts)
        return f"[{inner}]" if e.optional else (f"({inner})" if len(opts) > 1 else opts[0])

    def slot_rule(tname: str) -> None:
        key = rule_name("slot", tname)
        if key in rules:
            return
        rules[key] = "<VOID>"
        t = types.get(tname) or ctx.slot_type(tname)
        if t.builtin == "number":
            forms = _number_forms(t)
        elif t.builtin == "letter":
            forms = _letter_forms(t)
        else:
            forms = []
            for v in t.values:
                if not _TEMPLATE.search(v.value):
                    forms.append(v.value)
                forms += v.synonyms
        alts = sorted({x for x in (expr(parse_expression(f)) for f in forms) if x})
        rules[key] = " | ".join(alts) if alts else "<VOID>"

    intents = []
    for iname, it in ctx.intents.items():
        alts = [x for x in (expr(parse_expression(e)) for e in it.expressions) if x]
        key = rule_name("intent", iname)
        rules[key] = " | ".join(f"({a})" if "|" in a and len(alts) > 1 else a for a in alts) if alts else "<VOID>"
        intents.append(f"<{key}>")
    body = "\n".join(f"<{k}> = {v};" for k, v in rules.items())
    return f"#JSGF V1.0;\ngrammar {name};\npublic <command> = {' | '.join(intents)};\n{body}\n"


# ---------------------------------------------------------------------------------------- matching
@dataclass(frozen=True, slots=True)
class Match:
    intent: str
    slots: dict[str, str]
    """slot name -> normalised value."""
    said: dict[str, str]
    """slot name -> the words that said it."""
    expression: int
    """Index of the intent's expression that matched."""


class Matcher:
    """Text -> the context's intent and normalised slots (a full match of one expression)."""

    def __init__(self, ctx: Context, values: Mapping[str, Iterable[str]] | None = None) -> None:
        self.ctx = ctx
        self.types = _slot_values(ctx, values)
        self._n = 0
        self._groups: dict[str, tuple] = {}
        self._type_cache: dict[str, tuple[str, list]] = {}
        self.aliases = [(f" {' '.join(tokens(k))} ", f" {' '.join(tokens(v))} ")
                        for t in self.types.values() for k, v in t.aliases.items()]
        self.patterns: list[tuple[str, int, re.Pattern, list[str]]] = []
        for iname, it in ctx.intents.items():
            for j, e in enumerate(it.expressions):
                top: list[str] = []
                rx = self._expr(parse_expression(e), top)
                self.patterns.append((iname, j, re.compile(rx), top))

    def _gid(self) -> str:
        self._n += 1
        return f"g{self._n}"

    def _expr(self, e, slots: list[str]) -> str:
        if isinstance(e, Word):
            return re.escape(e.text) + " "
        if isinstance(e, Seq):
            return "".join(self._expr(i, slots) for i in e.items)
        if isinstance(e, Alt):
            body = "|".join(self._expr(o, slots) for o in e.options)
            return f"(?:{body})" + ("?" if e.optional else "")
        g = self._gid()
        slots.append(g)
        children: list[str] = []
        inner = self._type(e.type, children)
        self._groups[g] = ("slot", e.name, e.type, children)
        return f"(?P<{g}>{inner})"

    def _type(self, tname: str, children: list[str]) -> str:
        t = self.types.get(tname) or self.ctx.slot_type(tname)
        if t.builtin == "number":
            forms = sorted(_number_forms(t), key=len, reverse=True)
            return "(?:" + "|".join(re.escape(f) + " " for f in forms) + r"|\d+ )"
        if t.builtin == "letter":
            return "(?:" + "|".join(re.escape(f) + " " for f in sorted(_letter_forms(t), key=len, reverse=True)) + ")"
        alts = []
        for i, v in enumerate(t.values):
            forms = ([v.value] if not _TEMPLATE.search(v.value) else []) + list(v.synonyms)
            for f in forms:
                g = self._gid()
                nested: list[str] = []
                rx = self._expr(parse_expression(f), nested)
                self._groups[g] = ("value", tname, i, nested)
                children.append(g)
                alts.append(f"(?P<{g}>{rx})")
        return "(?:" + "|".join(alts) + ")" if alts else "(?!)"

    def _resolve(self, m: re.Match, g: str) -> str:
        _, _name, tname, children = self._groups[g]
        said = m.group(g).split()
        t = self.types.get(tname) or self.ctx.slot_type(tname)
        if t.builtin == "number":
            n = _read_number(said)
            return str(n) if n is not None else " ".join(said)
        if t.builtin == "letter":
            w = said[0]
            return NATO.get(w, w)
        for c in children:
            if m.group(c) is not None:
                _, _, i, nested = self._groups[c]
                fill = {self._groups[n][1]: self._resolve(m, n) for n in nested if m.group(n) is not None}
                return _TEMPLATE.sub(lambda x: fill.get(x.group(1), ""), t.values[i].value)
        return " ".join(said)

    def normalise(self, text: str) -> str:
        s = " " + " ".join(tokens(text)) + " "
        for wrong, right in self.aliases:
            s = s.replace(wrong, right)
        return s[1:]

    def match(self, text: str) -> Match | None:
        s = self.normalise(text)
        if not s.strip():
            return None
        for iname, j, rx, top in self.patterns:
            m = rx.fullmatch(s)
            if m is None:
                continue
            slots, said = {}, {}
            for g in top:
                if m.group(g) is not None:
                    name = self._groups[g][1]
                    slots[name] = self._resolve(m, g)
                    said[name] = m.group(g).strip()
            return Match(iname, slots, said, j)
        return None


# ---------------------------------------------------------------------------------------- expansion
def _sample(ctx: Context, types: dict[str, SlotType], e, rng: random.Random, slots: dict[str, str]) -> list[str]:
    if isinstance(e, Word):
        return [e.text]
    if isinstance(e, Seq):
        return [w for i in e.items for w in _sample(ctx, types, i, rng, slots)]
    if isinstance(e, Alt):
        if e.optional and rng.random() < 0.5:
            return []
        return _sample(ctx, types, rng.choice(e.options), rng, slots)
    t = types.get(e.type) or ctx.slot_type(e.type)
    if t.builtin == "number":
        n = rng.randint(t.min, t.max)
        slots[e.name] = str(n)
        return number_words(n).split()
    if t.builtin == "letter":
        c = rng.choice(t.letters)
        slots[e.name] = c
        return [c]
    if not t.values:
        return []
    v = rng.choice(t.values)
    forms = ([v.value] if not _TEMPLATE.search(v.value) else []) + list(v.synonyms)
    inner: dict[str, str] = {}
    words = _sample(ctx, types, parse_expression(rng.choice(forms)), rng, inner)
    slots[e.name] = _TEMPLATE.sub(lambda x: inner.get(x.group(1), ""), v.value)
    return words


def expand(ctx: Context, per_intent: int = 200, seed: int = 0,
           values: Mapping[str, Iterable[str]] | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """Up to ``per_intent`` distinct sentences per intent: (text, intent, slots)."""
    rng = random.Random(seed)
    types = _slot_values(ctx, values)
    out = []
    for iname, it in ctx.intents.items():
        trees = [parse_expression(e) for e in it.expressions]
        seen: set[str] = set()
        for _ in range(per_intent * 8):
            if len(seen) >= per_intent:
                break
            slots: dict[str, str] = {}
            text = " ".join(_sample(ctx, types, rng.choice(trees), rng, slots))
            if text and text not in seen:
                seen.add(text)
                out.append((text, iname, slots))
    return out


_HOMOPHONES = {"two": "to", "four": "for", "eight": "ate", "one": "won", "b": "be", "c": "see"}
_PREFIXES = ["hey", "okay", "um", "uh", "so", "hey watch", "listen"]
_SUFFIXES = ["please", "thanks", "now", "right now", "thank you", "okay"]
OOS_LINES = [
    "what time is it", "how is the weather today", "tell me a joke", "what is the ppe policy",
    "when does my shift end", "who won the game last night", "i had a great weekend", "the coffee machine is broken again",
    "how do i reset my password", "where is the break room", "what's for lunch", "did you see the email",
    "thanks that's all", "good morning everyone", "can you remind me what the safety rules are",
    "my badge does not work", "the truck is late today", "how many pallets are left", "what is the wifi password",
    "i think it is going to rain", "how long is the break", "the printer is out of paper", "is the canteen open",
    "what does this error mean", "why is the scanner showing an error", "who is on shift tonight",
]
"""Out-of-context lines labelled ``oos`` so the intent model learns to say 'none of these'."""


def _noisy(text: str, rng: random.Random, fillers: list[str]) -> str:
    words = text.split()
    r = rng.random()
    if r < 0.15:
        words = [_HOMOPHONES.get(w, w) if rng.random() < 0.5 else w for w in words]
    elif r < 0.3 and len(words) > 3:
        del words[rng.randrange(1, len(words))]
    if rng.random() < 0.25:
        words = rng.choice(_PREFIXES + fillers).split() + words
    if rng.random() < 0.25:
        words = words + rng.choice(_SUFFIXES + fillers).split()
    return " ".join(words)


def training_rows(ctx: Context, per_intent: int = 200, noise: float = 0.5, seed: int = 0, oos: bool = True,
                  values: Mapping[str, Iterable[str]] | None = None) -> list[dict]:
    """JSONL rows for ``hotpath intent train``: ``{"text", "intent", "slots", "source"}``; ``noise`` of
    them get a paraphrase (fillers, a dropped word, a number heard as its homophone)."""
    rng = random.Random(seed + 1)
    rows = []
    for text, intent, slots in expand(ctx, per_intent, seed, values):
        src = "context"
        if rng.random() < noise:
            text, src = _noisy(text, rng, ctx.fillers), "context-noise"
        rows.append({"text": text, "intent": intent, "slots": slots, "source": f"{src}:{ctx.context}"})
    if oos:
        rows += [{"text": t, "intent": "oos", "slots": {}, "source": "context-oos"} for t in OOS_LINES]
    return rows


def write_training(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


# ---------------------------------------------------------------------------------------- actions
def render_reply(template: str, slots: Mapping[str, str | None]) -> str:
    """``"{team} summoned[ to {location}]."`` with the slots; a ``[...]`` part whose slot is empty is
    left out; the first letter is a capital."""

    def part(m: re.Match) -> str:
        inner = m.group(1)
        return "" if any(not slots.get(n) for n in _TEMPLATE.findall(inner)) else inner

    text = re.sub(r"\[([^\[\]]*)\]", part, template)
    text = _TEMPLATE.sub(lambda m: str(slots.get(m.group(1)) or ""), text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]


def _fill(v, slots: Mapping[str, str | None]):
    if isinstance(v, str):
        whole = _TEMPLATE.fullmatch(v)
        if whole:
            return slots.get(whole.group(1))
        return _TEMPLATE.sub(lambda m: str(slots.get(m.group(1)) or ""), v)
    if isinstance(v, dict):
        return {k: _fill(x, slots) for k, x in v.items()}
    if isinstance(v, list):
        return [_fill(x, slots) for x in v]
    return v


def render_action(ctx: Context, intent: str, slots: Mapping[str, str | None], *, prefix: str = "",
                  directory: Mapping[str, str] | None = None) -> dict:
    """The intent's action with its templates filled: what would be published, posted or dialled."""
    a = ctx.intents[intent].action
    if a.type == "mqtt":
        return {"type": "mqtt", "topic": prefix + _fill(a.topic, slots), "payload": _fill(a.payload, slots), "qos": a.qos}
    if a.type == "webhook":
        return {"type": "webhook", "url": _fill(a.url, slots), "body": _fill(a.body, slots)}
    if a.type == "sip":
        who = _fill(a.to, slots) or ""
        book = directory or {}
        ext = book.get(who) or next((e for n, e in book.items() if who and (n in who or who in n)), None)
        return {"type": "sip", "to": who, "extension": ext}
    return {"type": a.type}


def action_topic_filters(ctx: Context) -> list[str]:
    """The MQTT topic filters the context's actions publish on: a level holding a ``{slot}`` becomes
    ``+`` (``lights/{room}/set`` -> ``lights/+/set``); an ``undo`` intent's ``.../cancel`` too."""
    out: list[str] = []
    for it in ctx.intents.values():
        a = it.action
        if a.type != "mqtt":
            continue
        t = "/".join("+" if _TEMPLATE.search(level) else level for level in a.topic.split("/"))
        out.append(t)
        if it.confirm == "undo":
            out.append(t + "/cancel")
    return list(dict.fromkeys(out))


def tenant_action_topics(voice) -> tuple[list[str], list[str]]:
    """(the further tenants' topic prefixes, every tenant context's action topic filters) for the
    broker's ACL; ``voice.tenants`` unset means the demo's tenants. A context that does not load adds
    nothing here (the edge itself refuses to start on it, with the error)."""
    from hotpath.voice.context import ContextError
    from hotpath.voice.settings import DEMO_TENANTS

    tenants = voice.tenants if voice.tenants is not None else DEMO_TENANTS
    topics: list[str] = []
    for path in [voice.context, *(t.context for t in tenants)]:
        try:
            topics += action_topic_filters(load_context(path) if path is not None else load_context(DEFAULT_CONTEXT))
        except ContextError:
            continue
    return [t.topic_prefix for t in tenants], list(dict.fromkeys(topics))


# ---------------------------------------------------------------------------------------- all of it
@dataclass
class Compiled:
    context: Context
    jsgf: str
    matcher: Matcher
    rows: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def compile_context(source: Context | str | Path, *, per_intent: int = 200, noise: float = 0.5, seed: int = 0,
                    known: Callable[[str], bool] | None = None,
                    values: Mapping[str, Iterable[str]] | None = None) -> Compiled:
    """Load (when given a path), then build the grammar, the matcher and the training rows, timed."""
    t0 = time.perf_counter()
    ctx = source if isinstance(source, Context) else load_context(source)
    t1 = time.perf_counter()
    grammar = jsgf(ctx, known=known, values=values)
    t2 = time.perf_counter()
    matcher = Matcher(ctx, values)
    t3 = time.perf_counter()
    rows = training_rows(ctx, per_intent, noise, seed, values=values) if per_intent else []
    t4 = time.perf_counter()
    return Compiled(ctx, grammar, matcher, rows, {"load": t1 - t0, "jsgf": t2 - t1, "matcher": t3 - t2,
                                                  "training": t4 - t3, "total": t4 - t0})
