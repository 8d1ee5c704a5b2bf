"""Import a Picovoice Rhino context (YAML) as one of ours, so a site migrating from Rhino keeps its commands.

Rhino's format::

    context:
      expressions:
        changeColor:
          - "[turn, make] (all) (the) lights $color:color"
      slots:
        color: [blue, green, "dark red"]
      macros:
        polite: [please, kindly]

Its syntax maps onto ours: ``[a, b]`` (one of) -> ``(a | b)``; ``(a)`` / ``(a, b)`` (optional) ->
``[a]`` / ``[a | b]``; ``$type:name`` stays; ``@macro`` becomes the macro's phrases as alternatives;
Picovoice's built-in slots become ours (``pv.SingleDigitInteger`` -> digit (number 0..9),
``pv.TwoDigitInteger`` / ``pv.Percent`` -> number 0..99 / 0..100, ``pv.Alphabetic`` -> letter).
Each intent gets an MQTT action on ``<context>/<intent>`` with its slots as the payload and a plain
reply naming the intent and its slots (``Move to 7.``, read back as ``Move to 7?``); edit them after
the import. Any problem raises one :class:`ContextError` naming the file and
line, and the result is validated by :func:`~hotpath.voice.context.parse_context` before it is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hotpath.voice.context import ContextError, parse_context, plain_yaml

__all__ = ["import_rhino", "convert_expression", "PV_BUILTINS"]

PV_BUILTINS = {
    "pv.SingleDigitInteger": ("digit", {"builtin": "number", "min": 0, "max": 9}),
    "pv.TwoDigitInteger": ("number", {"builtin": "number", "min": 0, "max": 99}),
    "pv.Percent": ("percent", {"builtin": "number", "min": 0, "max": 100}),
    "pv.Alphabetic": ("letter", {"builtin": "letter"}),
}


def convert_expression(text: str, macros: dict[str, list[str]] | None = None) -> str:
    """One Rhino expression in our syntax (raises ValueError naming the problem)."""
    macros = macros or {}
    out: list[str] = []
    stack: list[str] = []
    for m in re.finditer(r"\$([A-Za-z_][\w.]*)(?::([A-Za-z_]\w*))?|@([A-Za-z_]\w*)|([\[\](),])|([^\s\[\](),$@]+)", text):
        slot, name, macro, punct, word = m.groups()
        if slot is not None:
            if slot in PV_BUILTINS:
                slot = PV_BUILTINS[slot][0]
            elif "." in slot:
                raise ValueError(f"Picovoice built-in slot ${slot} has no equivalent here")
            out.append(f"${slot}" + (f":{name}" if name else ""))
        elif macro is not None:
            if macro not in macros:
                raise ValueError(f"unknown macro @{macro}")
            out.append("(" + " | ".join(convert_expression(p) for p in macros[macro]) + ")")
        elif punct == "[":
            stack.append("]")
            out.append("(")
        elif punct == "(":
            stack.append(")")
            out.append("[")
        elif punct in ("]", ")"):
            if not stack or stack.pop() != punct:
                raise ValueError(f"unbalanced {punct!r} in {text!r}")
            out.append(")" if punct == "]" else "]")
        elif punct == ",":
            if not stack:
                raise ValueError(f"',' outside brackets in {text!r}")
            out.append("|")
        else:
            w = re.sub(r"[^a-z0-9'\-]", "", word.lower())
            if w:
                out.append(w)
    if stack:
        raise ValueError(f"unclosed bracket in {text!r}")
    s = " ".join(out)
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", re.sub(r"\[\s+", "[", re.sub(r"\s+\]", "]", s))))


def _said(intent: str, slots: list[str]) -> str:
    """``moveTo`` + [dock] -> ``Move to[ {dock}]``: a plain default reply naming the intent and its slots."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", intent).replace("_", " ").lower().split()
    return " ".join(words).capitalize() + "".join(f"[ {{{n}}}]" for n in slots)


def import_rhino(path: str | Path, name: str | None = None) -> str:
    """A Rhino context file -> our context YAML text (already validated)."""
    path = Path(path)
    if not path.is_file():
        raise ContextError(path, None, "no such Rhino context file")
    text = path.read_text(encoding="utf-8")
    data, lines = plain_yaml(text, path)
    marks = {k[1:]: v for k, v in lines.items() if k[:1] == ("context",)}
    if not isinstance(data, dict) or not isinstance(data.get("context"), dict):
        raise ContextError(path, 1, "a Rhino context has a top-level 'context:' mapping")
    c = data["context"]
    exprs, slots, macros = c.get("expressions"), c.get("slots") or {}, c.get("macros") or {}
    if not isinstance(exprs, dict) or not exprs:
        raise ContextError(path, 1, "context.expressions must map intents to lists of expressions")
    ours_slots: dict = {}
    for t, vals in slots.items():
        if not isinstance(vals, list) or not vals:
            raise ContextError(path, marks.get(("slots", t)), f"slot {t!r} needs a list of values")
        ours_slots[t] = {"values": [str(v).lower() for v in vals]}
    intents: dict = {}
    ctx_name = name or re.sub(r"\W", "_", path.stem)
    if not re.match(r"[A-Za-z_]", ctx_name):
        ctx_name = "c_" + ctx_name
    for intent, lines in exprs.items():
        if not isinstance(lines, list) or not lines:
            raise ContextError(path, marks.get(("expressions", intent)), f"intent {intent!r} needs a list of expressions")
        converted, names = [], []
        for i, e in enumerate(lines):
            try:
                converted.append(convert_expression(str(e), macros))
            except ValueError as exc:
                raise ContextError(path, marks.get(("expressions", intent, i)), f"{intent}: {exc}") from None
            for m in re.finditer(r"\$([A-Za-z_][\w.]*)(?::([A-Za-z_]\w*))?", str(e)):
                t = m.group(1)
                if t in PV_BUILTINS:
                    new, spec = PV_BUILTINS[t]
                    ours_slots.setdefault(new, spec)
                names.append(m.group(2) or PV_BUILTINS.get(t, (t,))[0])
        names = list(dict.fromkeys(names))
        intents[intent] = {
            "expressions": converted,
            "action": {"type": "mqtt", "topic": f"{ctx_name}/{intent}", "payload": {n: f"{{{n}}}" for n in names}},
            "confirm": "never",
            "reply": _said(intent, names) + ".",
            "read_back": _said(intent, names) + "?",
        }
    ours = {"context": ctx_name, "description": f"imported from the Rhino context {path.name}",
            "slots": ours_slots, "intents": intents}
    out = ("# Imported from a Picovoice Rhino context by `hotpath voice context import`.\n"
           "# Check each intent's action, confirmation policy and reply.\n"
           + yaml.safe_dump(ours, sort_keys=False, allow_unicode=True, width=120))
    parse_context(out, f"{path} (imported)")
    return out
