"""The keyword classifier and the routing rule (threshold + command intents)."""

from __future__ import annotations

import pytest

from hotpath.errors import ConfigError
from hotpath.intent.types import Intent, IntentClassifier
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.routing import load_classifier, route

clf = KeywordIntentClassifier()


@pytest.mark.parametrize(
    "text, intent, slots",
    [
        ("Need a supervisor at loading dock 4", Intent.SUMMON_TEAM, {"team": "supervisor", "location": "dock 4"}),
        ("need the supervisor at loading dock four", Intent.SUMMON_TEAM, {"team": "supervisor", "location": "dock 4"}),
        ("Summon cleaning crew to aisle 5", Intent.SUMMON_TEAM, {"team": "cleaning crew", "location": "aisle 5"}),
        ("Call technician Nguyen", Intent.DIAL_PERSON, {"person": "technician nguyen"}),
        ("dial the safety officer", Intent.DIAL_PERSON, {"person": "safety officer"}),
        ("emergency help", Intent.EMERGENCY, {}),
        ("cancel that", Intent.CANCEL, {}),
        ("What is the PPE policy for zone B?", Intent.GENERAL_QUERY, {"location": "zone b"}),
        ("how do i report a broken scanner", Intent.GENERAL_QUERY, {}),
    ],
)
def test_keyword_rules(text, intent, slots):
    r = clf.predict(text)
    assert r.intent is intent, r
    for k, v in slots.items():
        assert getattr(r.slots, k) == v
    assert abs(sum(r.scores.values()) - 1.0) < 1e-6


def test_commands_route_locally_and_questions_to_cloud():
    cmd = route(clf.predict("Need a supervisor at loading dock 4"), threshold=0.85, device_location="warehouse b")
    assert cmd.kind == "action" and cmd.location == "dock 4"
    q = route(clf.predict("What is the PPE policy?"), threshold=0.85, device_location="warehouse b")
    assert q.kind == "cloud" and q.location == "warehouse b"
    # a per-tenant threshold above the rule's confidence sends even a command to the cloud
    assert route(clf.predict("Call maintenance"), threshold=0.999, device_location=None).kind == "cloud"


def test_classifier_is_pluggable_by_config():
    assert isinstance(load_classifier("keyword"), KeywordIntentClassifier)
    assert isinstance(load_classifier("hotpath.voice.keyword_intent:KeywordIntentClassifier"), IntentClassifier)
    with pytest.raises(ConfigError):
        load_classifier("no.such.module:Thing")
    with pytest.raises(ConfigError):
        load_classifier("garbage")


def test_the_trained_onnx_classifier_plugs_in():
    """The intent issue's model behind the same interface (voice.classifier: onnx, the default)."""
    from hotpath.voice.settings import VoiceSettings

    clf = load_classifier(VoiceSettings().classifier)
    r = clf.predict("need the supervisor at loading dock four")
    assert r.intent is Intent.SUMMON_TEAM and r.slots.team == "supervisor" and r.slots.location == "dock 4"
    assert route(r, threshold=0.85, device_location=None).kind == "action"
    assert route(clf.predict("how do i report a broken scanner"), threshold=0.85, device_location=None).kind == "cloud"
