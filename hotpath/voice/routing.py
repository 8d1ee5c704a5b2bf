"""Transcript -> intent -> where it goes: a local action or the cloud assistant.

The classifier is pluggable by config (``VoiceSettings.classifier``): ``keyword`` (the built-in
rules), ``onnx`` (the trained model of :mod:`hotpath.intent`, when it is installed), or any
``module:attribute`` naming an :class:`~hotpath.intent.types.IntentClassifier` class or factory.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Literal

from hotpath.errors import ConfigError
from hotpath.intent.types import IntentClassifier, IntentResult
from hotpath.voice.keyword_intent import KeywordIntentClassifier

__all__ = ["Route", "route", "load_classifier", "fill_slots", "ONNX_CLASSIFIER"]

ONNX_CLASSIFIER = "hotpath.intent.model:load_classifier"
"""Where the trained ONNX classifier is expected (the intent issue owns it)."""


@dataclass(frozen=True, slots=True)
class Route:
    kind: Literal["action", "cloud"]
    result: IntentResult
    location: str | None
    """The slot's location, else where the device is (the site's device -> location map)."""


def route(result: IntentResult, *, threshold: float, device_location: str | None) -> Route:
    """Confident command intents run locally; everything else goes to the cloud."""
    kind = "action" if result.is_local_command(threshold) else "cloud"
    return Route(kind, result, result.slots.location or device_location)


def _longest(words: list[str], phrases) -> str | None:
    best = None
    text = " " + " ".join(words) + " "
    for p in phrases:
        if f" {p} " in text and (best is None or len(p) > len(best)):
            best = p
    return best


def fill_slots(result: IntentResult, *, teams, people) -> IntentResult:
    """The tenant's own vocabulary fills a team or person slot the classifier left empty or got
    partly (``send a medic`` -> team ``medic``); a slot it filled with a known name is kept."""
    from dataclasses import replace

    from hotpath.intent.types import Intent

    words = re.findall(r"[a-z0-9']+", result.text.lower())
    slots = result.slots
    if result.intent is Intent.SUMMON_TEAM and slots.team not in set(teams):
        team = _longest(words, teams)
        if team is not None:
            slots = replace(slots, team=team)
    if result.intent is Intent.DIAL_PERSON and slots.person not in set(people):
        person = _longest(words, people)
        if person is not None:
            slots = replace(slots, person=person)
    return result if slots is result.slots else replace(result, slots=slots)


def load_classifier(spec: str) -> IntentClassifier:
    if spec == "keyword":
        return KeywordIntentClassifier()
    target = ONNX_CLASSIFIER if spec == "onnx" else spec
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ConfigError(f"intent classifier {spec!r} is neither 'keyword', 'onnx' nor 'module:attribute'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"intent classifier {target!r} cannot be imported: {exc}",
                          hint="use classifier: keyword until the ONNX model is installed") from exc
    clf = factory()
    if not isinstance(clf, IntentClassifier):
        raise ConfigError(f"{target!r} did not produce an IntentClassifier")
    return clf
