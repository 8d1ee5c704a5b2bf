"""The voice bench's tally: a read-back is counted as a read-back, not as a lost action."""

from __future__ import annotations

from bench.voice import PHRASES, _figures
from bench.voice_sim import Spoken


def _spoken(phrase: str, uid: str, decision: str, t_end: float = 100.0) -> Spoken:
    sp = Spoken(text=phrase, t_end=t_end)
    sp.events = [(t_end, {"event": "vad-start", "utterance_id": uid}),
                 (t_end + 0.2, {"event": "decision", "utterance_id": uid, "data": {"decision": decision}})]
    return sp


def test_read_backs_are_counted_apart_from_missing_actions() -> None:
    phrase, team, loc = PHRASES[0]
    acted = _spoken(phrase, "u1", "act")
    asked = _spoken(phrase, "u2", "confirm")
    lost = _spoken(phrase, "u3", "reject")
    summons = {"w1": [(100.3, {"utterance_id": "u1", "team": team, "location": loc})]}
    fig = _figures([("w1", phrase, acted), ("w1", phrase, asked), ("w1", phrase, lost)], summons, 1, 3, 5.0)
    assert fig["actions_correct"] == 1
    assert fig["read_backs"] == 1
    assert fig["actions_missing"] == 1
    assert fig["decisions"] == {"act": 1, "confirm": 1, "reject": 1}
    assert fig["action_p50_ms"] == 300.0
