"""A tenant's command context: its intents, the sentences that say them, its slot types and actions.

One YAML file per tenant (``contexts/industrial.yaml`` is the default; format in docs/contexts.md)::

    context: lighting
    slots:
      room:
        values:
          - kitchen
          - value: living room
            synonyms: [lounge, "(sitting | front) room"]
      level: {builtin: number, min: 1, max: 10}
    intents:
      lights_on:
        expressions: ["[please] (turn | switch) on the $room:where lights"]
        action: {type: mqtt, topic: "home/{where}/light", payload: {state: "on"}}
        confirm: never
        reply: "{where} lights on."

Expressions: words; ``(a | b)`` alternatives; ``[a | b]`` optional; ``$type`` or ``$type:name`` a slot.
A slot value's synonyms are expressions too and may hold a built-in slot (``[loading] dock $number``
with ``value: dock {number}``: "loading dock four" -> ``dock 4``). Built-in types: ``number`` (words and
digits -> digits) and ``letter`` (letters and the NATO alphabet -> a letter).

:func:`load_context` reads and checks a file at once: on any problem it raises ONE
:class:`ContextError` naming the file, the line and the problem; nothing is half-loaded. Plain domain
code: pyyaml and pydantic, no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hotpath.errors import BadInput

__all__ = [
    "plain_yaml", "ContextError", "Context", "SlotType", "SlotValue", "Intent", "MqttAction", "WebhookAction", "SipAction",
    "CloudAction", "CancelAction", "Word", "Alt", "SlotRef", "Seq", "parse_expression", "load_context",
    "parse_context", "DEFAULT_CONTEXT", "CONTEXTS_DIR", "NUMBER_WORDS", "NATO",
]

CONTEXTS_DIR = Path(__file__).resolve().parents[2] / "contexts"
"""The repository's contexts (``contexts/examples``: the Rhino imports and their sources)."""
DEFAULT_CONTEXT = Path(__file__).resolve().parent / "industrial.yaml"
"""The industrial default, shipped inside the package (so a wheel or image has it);
``contexts/industrial.yaml`` in the repository is a link to it."""

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
NATO = {"alpha": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f", "golf": "g",
        "hotel": "h", "india": "i", "juliet": "j", "kilo": "k", "lima": "l", "mike": "m", "november": "n",
        "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t", "uniform": "u",
        "victor": "v", "whiskey": "w", "xray": "x", "yankee": "y", "zulu": "z"}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class ContextError(BadInput):
    """A context file that cannot be used: ``file:line: problem``."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}", field="context")
        self.path, self.line, self.problem = str(path), line, problem


# ---------------------------------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Word:
    text: str


@dataclass(frozen=True, slots=True)
class SlotRef:
    type: str
    name: str


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple["Word | Alt | SlotRef", ...]


@dataclass(frozen=True, slots=True)
class Alt:
    options: tuple[Seq, ...]
    optional: bool = False


_TOKEN = re.compile(rf"\s*(?:(?P<open>[(\[])|(?P<close>[)\]])|(?P<bar>\|)|\$(?P<slot>{_NAME})(?::(?P<name>{_NAME}))?"
                    r"|(?P<word>[A-Za-z0-9][A-Za-z0-9'.\-]*)|(?P<bad>\S))")


def parse_expression(text: str) -> Seq:
    """``"[please] (call | dial) $person"`` -> a tree; raises ValueError naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an expression must be a non-empty string")
    tokens: list[tuple[str, str, str | None]] = []
    for m in _TOKEN.finditer(text.rstrip()):
        kind = m.lastgroup if m.lastgroup != "name" else "slot"
        if kind == "bad":
            raise ValueError(f"unexpected character {m.group('bad')!r} in expression {text!r}")
        val = m.group("slot") if kind == "slot" else m.group(kind)
        tokens.append((kind, val.lower() if kind == "word" else val, m.group("name")))
    pos = 0

    def options(closer: str | None) -> list[Seq]:
        """The ``|``-separated sequences up to ``closer`` (None: the end of the expression)."""
        nonlocal pos
        out: list[Seq] = []
        items: list = []
        while pos < len(tokens):
            kind, val, name = tokens[pos]
            if kind == "close":
                break
            pos += 1
            if kind == "word":
                items.append(Word(val))
            elif kind == "slot":
                items.append(SlotRef(val, name or val))
            elif kind == "bar":
                if closer is None:
                    raise ValueError(f"'|' outside brackets in expression {text!r} (write (a | b))")
                out.append(Seq(tuple(items)))
                items = []
            else:  # an opening bracket
                want = ")" if val == "(" else "]"
                inner = options(want)
                if pos >= len(tokens) or tokens[pos][1] != want:
                    raise ValueError(f"{val!r} not closed by {want!r} in expression {text!r}")
                pos += 1
                if val == "(" and any(not o.items for o in inner):
                    raise ValueError(f"an empty alternative in expression {text!r} (use [ ] for optional words)")
                items.append(Alt(tuple(inner), optional=val == "["))
        out.append(Seq(tuple(items)))
        return out

    top = options(None)
    if pos < len(tokens):
        raise ValueError(f"{tokens[pos][1]!r} closes nothing in expression {text!r}")
    if not top[0].items:
        raise ValueError(f"expression {text!r} has no words")
    return top[0]


def slot_refs(e: Seq | Alt | Word | SlotRef):
    """Every slot reference inside an expression tree."""
    if isinstance(e, SlotRef):
        yield e
    elif isinstance(e, Seq):
        for i in e.items:
            yield from slot_refs(i)
    elif isinstance(e, Alt):
        for o in e.options:
            yield from slot_refs(o)


# ---------------------------------------------------------------------------------------- the models
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlotValue(_Model):
    value: str
    """The normalised value the action sees (``dock {number}`` fills a built-in slot of its synonyms)."""
    synonyms: list[str] = Field(default_factory=list)
    """Other ways to say it: expressions (``"[loading] dock $number"``); the value itself is said too
    when it has no ``{...}`` template."""


class SlotType(_Model):
    builtin: Literal["number", "letter"] | None = None
    values: list[Union[str, SlotValue]] = Field(default_factory=list)
    min: int = Field(0, ge=0, le=999)
    """number: the smallest spoken number."""
    max: int = Field(99, ge=0, le=999)
    """number: the largest spoken number (JSGF size grows with it)."""
    letters: str = "abcdefghijklmnopqrstuvwxyz"
    """letter: which letters may be said."""
    nato: bool = True
    """letter: also accept the NATO alphabet (``bravo`` -> ``b``)."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Word-level mis-hearings fixed before the value is looked up (``grew: crew``)."""
    extensible: bool = False
    """The tenant's settings may add values at compile time (people, teams from the directory)."""

    @field_validator("values")
    @classmethod
    def _entries(cls, v):
        return [SlotValue(value=x) if isinstance(x, str) else x for x in v]


class MqttAction(_Model):
    type: Literal["mqtt"]
    topic: str
    """A template over the slots (``home/{room}/light``); the tenant's topic prefix goes before it."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """Values are templates over the slots (``"{team}"``); the device, tenant and text are added."""
    qos: int = Field(1, ge=0, le=2)


class WebhookAction(_Model):
    type: Literal["webhook"]
    url: str
    body: dict[str, Any] = Field(default_factory=dict)


class SipAction(_Model):
    type: Literal["sip"]
    to: str = "{person}"
    """Who to dial, a template; looked up in the tenant's directory (``voice.actions.directory``)."""


class CloudAction(_Model):
    type: Literal["cloud"]


class CancelAction(_Model):
    type: Literal["cancel"]
    """Calls off the device's pending question or its last emergency."""


Action = Annotated[Union[MqttAction, WebhookAction, SipAction, CloudAction, CancelAction], Field(discriminator="type")]


class Intent(_Model):
    expressions: list[str] = Field(min_length=1)
    action: Action
    confirm: Union[Literal["never", "always", "undo"], float] = "never"
    """``never``: act at once; ``always``: read back for a yes/no; ``undo``: act at once and accept
    "cancel" for a while (emergencies); a number: read back when the confidence is below it."""
    reply: str = "Done."
    """Spoken after the action: ``{slot}`` fills a value, ``[ to {location}]`` is left out when a slot in it
    is empty."""
    read_back: str | None = None
    """The yes/no question (default: the reply's words as a question)."""

    @field_validator("confirm")
    @classmethod
    def _bar(cls, v):
        if isinstance(v, float) and not 0.0 <= v <= 1.0:
            raise ValueError("a confidence bar must lie in [0, 1]")
        return v


class Context(_Model):
    context: str = Field(pattern=_NAME)
    """The context's name."""
    language: str = "en"
    version: int = 1
    description: str = ""
    slots: dict[str, SlotType] = Field(default_factory=dict)
    intents: dict[str, Intent] = Field(min_length=1)
    fillers: list[str] = Field(default_factory=lambda: ["please", "now", "hey", "okay", "um"])
    """Words the training data adds as paraphrase noise."""

    def slot_type(self, name: str) -> SlotType:
        t = self.slots.get(name)
        if t is None and name in ("number", "letter"):
            return SlotType(builtin=name)
        if t is None:
            raise KeyError(name)
        return t


# ---------------------------------------------------------------------------------------- loading
def _plain(node: yaml.Node, path: tuple, marks: dict[tuple, int], file: str) -> Any:
    """A composed YAML node -> plain data, recording the line of every path."""
    marks.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for k, v in node.value:
            key = yaml.safe_load(yaml.serialize(k)) if not isinstance(k, yaml.ScalarNode) else k.value
            if isinstance(key, str) and key in out:
                raise ContextError(file, k.start_mark.line + 1, f"{key!r} is given twice")
            marks[path + (key,)] = k.start_mark.line + 1
            out[key] = _plain(v, path + (key,), marks, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, path + (i,), marks, file) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def plain_yaml(text: str, file: str | Path) -> tuple[Any, dict[tuple, int]]:
    """YAML text -> (plain data with every key as written, path -> line); one ContextError on bad YAML.
    (Keys stay strings: ``on:`` is the word, not YAML 1.1's boolean.)"""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ContextError(file, mark.line + 1 if mark else None,
                           f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if node is None:
        raise ContextError(file, 1, "the file is empty")
    marks: dict[tuple, int] = {}
    return _plain(node, (), marks, str(file)), marks


def _line(marks: dict[tuple, int], loc: tuple) -> int | None:
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in marks:
            return marks[tuple(loc[:n])]
    return None


def _where(loc: tuple) -> str:
    return ".".join(str(x) for x in loc)


def parse_context(text: str, file: str | Path = "<context>") -> Context:
    """Parse and check context YAML; raise one ContextError (file, line, problem)."""
    data, marks = plain_yaml(text, file)
    if not isinstance(data, dict):
        raise ContextError(file, 1, "a context is a mapping with 'context', 'slots' and 'intents'")
    try:
        ctx = Context.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(x for x in err["loc"] if x not in ("str", "SlotValue", "function-after[_entries(), list[union[str,SlotValue]]]"))
        msg = err["msg"].replace("Value error, ", "")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"{loc[-1]!r} is required"
            loc = loc[:-1] if loc[:-1] in marks else loc
        raise ContextError(file, _line(marks, tuple(err["loc"])), f"{_where(loc)}: {msg}") from None
    _check(ctx, marks, str(file))
    return ctx


def _check(ctx: Context, marks: dict[tuple, int], file: str) -> None:
    """What pydantic cannot see: expression syntax, slot references, value templates, reply slots."""

    def parse(expr: str, loc: tuple) -> Seq:
        try:
            return parse_expression(expr)
        except ValueError as exc:
            raise ContextError(file, _line(marks, loc), f"{_where(loc)}: {exc}") from None

    def known(ref: SlotRef, loc: tuple, allowed: set[str] | None = None) -> None:
        if allowed is not None and ref.type not in allowed:
            raise ContextError(file, _line(marks, loc), f"{_where(loc)}: slot values may only use built-in "
                                                        f"slots ($number, $letter), not ${ref.type}")
        try:
            ctx.slot_type(ref.type)
        except KeyError:
            have = ", ".join(sorted(set(ctx.slots) | {"number", "letter"}))
            raise ContextError(file, _line(marks, loc), f"{_where(loc)}: unknown slot type ${ref.type} "
                                                        f"(defined: {have})") from None

    for tname, t in ctx.slots.items():
        loc0 = ("slots", tname)
        if t.builtin is None and not t.values and not t.extensible:
            raise ContextError(file, _line(marks, loc0), f"slots.{tname}: a slot type needs values (or builtin: number|letter)")
        if t.builtin == "number" and t.min > t.max:
            raise ContextError(file, _line(marks, loc0 + ("min",)), f"slots.{tname}: min {t.min} > max {t.max}")
        for i, v in enumerate(t.values):
            loc = loc0 + ("values", i)
            template = set(re.findall(rf"{{({_NAME})}}", v.value))
            names: set[str] = set()
            for j, syn in enumerate(v.synonyms):
                refs = list(slot_refs(parse(syn, loc + ("synonyms", j))))
                for r in refs:
                    known(r, loc + ("synonyms", j), {"number", "letter"})
                got = {r.name for r in refs}
                if got != template:
                    raise ContextError(file, _line(marks, loc + ("synonyms", j)),
                                       f"{_where(loc + ('synonyms', j))}: {syn!r} fills {sorted(got) or 'no slot'} but "
                                       f"the value {v.value!r} needs {sorted(template) or 'none'}")
                names |= got
            if template and not v.synonyms:
                raise ContextError(file, _line(marks, loc), f"{_where(loc)}: value {v.value!r} has a template and "
                                                            "needs synonyms that say it")
            if not template and not v.synonyms:
                parse(v.value, loc)
    for iname, it in ctx.intents.items():
        names: set[str] | None = None
        for j, expr in enumerate(it.expressions):
            loc = ("intents", iname, "expressions", j)
            refs = list(slot_refs(parse(expr, loc)))
            for r in refs:
                known(r, loc)
            names = {r.name for r in refs} | (names or set())
        used = set(re.findall(rf"{{({_NAME})}}", it.reply + " " + (it.read_back or "") + " " + _action_text(it)))
        extra = used - (names or set()) - {"device", "tenant", "text", "prefix"}
        if extra:
            bad = "{" + sorted(extra)[0] + "}"
            loc = ("intents", iname, "reply" if bad in it.reply else "read_back" if bad in (it.read_back or "") else "action")
            raise ContextError(file, _line(marks, loc), f"intents.{iname}: the reply or action uses {{{sorted(extra)[0]}}} "
                                                        f"but no expression of it has that slot")


def _action_text(it: Intent) -> str:
    a = it.action
    return " ".join(str(x) for x in a.model_dump().values() if not isinstance(x, dict)) + " " + " ".join(
        str(v) for x in a.model_dump().values() if isinstance(x, dict) for v in x.values())


def load_context(path: str | Path) -> Context:
    """Read one context file; a missing, unreadable or wrong file raises one ContextError."""
    path = Path(path)
    if not path.is_file():
        raise ContextError(path, None, "no such context file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContextError(path, None, f"cannot be read: {exc}") from None
    return parse_context(text, path)
