"""Tenant command contexts: the format, its errors, compile, the slot parser, Rhino import, the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotpath.voice.context import DEFAULT_CONTEXT, ContextError, load_context, parse_context, parse_expression
from hotpath.voice.context_compile import Matcher, compile_context, jsgf, render_action, render_reply
from hotpath.voice.context_rhino import convert_expression, import_rhino

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contexts" / "examples"

GOOD = """\
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
    action: {type: mqtt, topic: "home/{where}/light", payload: {state: "on", room: "{where}"}}
    reply: "{where} lights on."
  dim:
    expressions: ["dim the $room:where [lights] to $level"]
    action: {type: mqtt, topic: "home/{where}/dim", payload: {level: "{level}"}}
    confirm: 0.8
    reply: "Dimmed[ the {where}] to {level}."
"""


def _error(text: str) -> ContextError:
    with pytest.raises(ContextError) as e:
        parse_context(text, "site.yaml")
    return e.value


def test_a_good_context_matches_and_normalises():
    ctx = parse_context(GOOD, "site.yaml")
    m = Matcher(ctx)
    got = m.match("Please switch on the front room lights")
    assert (got.intent, got.slots) == ("lights_on", {"where": "living room"})
    got = m.match("dim the kitchen to seven")
    assert (got.intent, got.slots) == ("dim", {"where": "kitchen", "level": "7"})
    assert m.match("dim the kitchen to eleven") is None  # outside the number range
    assert m.match("what is the weather in the kitchen") is None
    assert render_action(ctx, "lights_on", {"where": "living room"}, prefix="t1/") == {
        "type": "mqtt", "topic": "t1/home/living room/light", "payload": {"state": "on", "room": "living room"}, "qos": 1}
    assert render_reply("Dimmed[ the {where}] to {level}.", {"level": "3"}) == "Dimmed to 3."


@pytest.mark.parametrize("text, line, words", [
    (GOOD.replace("$room:where lights", "$rooms:where lights"), 11, "unknown slot type $rooms"),
    (GOOD.replace("(turn | switch)", "(turn | switch"), 11, "not closed"),
    (GOOD.replace("type: mqtt, topic", "type: mqt, topic"), 12, "action"),
    (GOOD.replace("confirm: 0.8", "confirm: 1.8"), 17, "confirm"),
    (GOOD.replace("min: 1, max: 10", "min: 1, max: 10, step: 2"), 8, "unknown key 'step'"),
    (GOOD.replace("    reply: \"{where} lights on.\"", "    reply: \"{room} lights on.\""), 13, "{room}"),
    (GOOD.replace("  level:", "  room:"), 8, "given twice"),
    (GOOD.replace("intents:", "intents: ["), 11, "not valid YAML"),
])
def test_a_bad_context_is_one_error_naming_file_line_and_problem(text, line, words):
    e = _error(text)
    assert e.path == "site.yaml" and e.line == line, e.message
    assert words in e.message
    assert e.message.startswith(f"site.yaml:{line}: ") and "\n" not in e.message


def test_a_value_template_must_be_said():
    e = _error(GOOD.replace("synonyms: [lounge, \"(sitting | front) room\"]", "synonyms: [\"room $number\"]"))
    assert e.line == 7 and "fills ['number']" in e.message


def test_expressions_parse_alternatives_optionals_and_slots():
    e = parse_expression("[please] (call | dial) $person:who")
    assert [type(i).__name__ for i in e.items] == ["Alt", "Alt", "SlotRef"]
    assert e.items[2].type == "person" and e.items[2].name == "who"
    for bad in ["(a | b", "a | b", "a ) b", "( | a)", "{x}"]:
        with pytest.raises(ValueError):
            parse_expression(bad)


def test_the_industrial_default_reproduces_todays_commands():
    ctx = load_context(DEFAULT_CONTEXT)
    assert set(ctx.intents) == {"DIAL_PERSON", "SUMMON_TEAM", "EMERGENCY", "CANCEL"}
    m = Matcher(ctx)
    cases = {
        "send a medic to loading dock four": ("SUMMON_TEAM", {"team": "medic", "location": "dock 4"}),
        "can you send the cleaning grew to zone b": ("SUMMON_TEAM", {"team": "cleaning crew", "location": "zone b"}),
        "please call the technician nguyen now": ("DIAL_PERSON", {"person": "technician nguyen"}),
        "fire fire": ("EMERGENCY", {}),
        "never mind": ("CANCEL", {}),
    }
    for text, (intent, slots) in cases.items():
        got = m.match(text)
        assert got is not None and (got.intent, got.slots) == (intent, slots), text
    assert m.match("why is the scanner showing an error") is None
    g = jsgf(ctx)
    assert "public <command> = <intent_DIAL_PERSON> | <intent_SUMMON_TEAM> | <intent_EMERGENCY> | <intent_CANCEL>;" in g
    assert "[loading] dock <slot_number>" in g


def test_the_industrial_grammar_is_what_pocketsphinx_decodes_with():
    from hotpath.voice.settings import VoiceSettings
    from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

    e = PocketsphinxEngine.from_settings(VoiceSettings(), )
    assert "<intent_SUMMON_TEAM>" in e.jsgf and "cleaning crew" in e.jsgf
    lighting = PocketsphinxEngine.from_settings(VoiceSettings(), context=parse_context(GOOD, "site.yaml"))
    assert "<intent_lights_on>" in lighting.jsgf and "SUMMON" not in lighting.jsgf


def test_every_generated_sentence_parses_back_to_its_intent_and_slots():
    for path in [DEFAULT_CONTEXT, *sorted(EXAMPLES.glob("*.yaml"))]:
        c = compile_context(path, per_intent=60, noise=0.0)
        m = c.matcher
        for r in c.rows:
            if r["intent"] == "oos":
                assert m.match(r["text"]) is None, r
                continue
            got = m.match(r["text"])
            assert got is not None and got.intent == r["intent"], (path.name, r)


def test_training_rows_are_what_intent_training_reads(tmp_path):
    from hotpath.intent.data import load_examples
    from hotpath.voice.context_compile import write_training

    c = compile_context(DEFAULT_CONTEXT, per_intent=40)
    path = write_training(c.rows, tmp_path / "industrial.train.jsonl")
    ex = load_examples(path)
    assert len(ex) == len(c.rows) and {e.intent.value for e in ex} >= {"SUMMON_TEAM", "oos"}
    assert any(r["source"].startswith("context-noise") for r in c.rows)


def test_a_twenty_intent_context_compiles_quickly():
    slots = "\n".join(f"  thing{i}:\n    values: [{', '.join(f'item {i} {j}' for j in range(30))}]" for i in range(20))
    intents = "\n".join(
        f"  do{i}:\n    expressions: [\"[please] (start | run | begin) [the] $thing{i} [on] [line $number] [now]\","
        f" \"(can | could) you (start | run) $thing{i}\"]\n    action: {{type: mqtt, topic: \"line/{{number}}/do{i}\"}}"
        for i in range(20))
    text = f"context: big\nslots:\n{slots}\nintents:\n{intents}\n"
    t0 = time.perf_counter()
    c = compile_context(parse_context(text, "big.yaml"), per_intent=200)
    assert len(c.context.intents) == 20 and len(c.rows) > 2000
    assert time.perf_counter() - t0 < 30  # the 5 s target is measured by `hotpath voice context compile` (docs)


def test_rhino_syntax_converts():
    assert convert_expression("[turn, switch] on (the) $room:room (lights, lamps)") == \
        "(turn | switch) on [the] $room:room [lights | lamps]"
    assert convert_expression("@polite dim $pv.TwoDigitInteger:level", {"polite": ["please", "kindly"]}) == \
        "(please | kindly) dim $number:level"
    with pytest.raises(ValueError):
        convert_expression("[turn, switch on")


def test_rhino_examples_import_and_understand_their_commands(tmp_path):
    cases = {
        "home_lighting": ("switch the living room lamps off", "lightsOff", {"room": "living room"}),
        "hospital_ward": ("bring an ice pack to room 12", "requestItem", {"item": "ice pack", "room": "12"}),
        "forklift_dock": ("drive to dock seven", "moveTo", {"dock": "7"}),
    }
    for name, (text, intent, slots) in cases.items():
        ours = parse_context(import_rhino(EXAMPLES / "rhino" / f"{name}.yml"), f"{name}.yaml")
        got = Matcher(ours).match(text)
        assert got is not None and (got.intent, got.slots) == (intent, slots), name
        # each site understands only its own commands
        assert Matcher(ours).match("send a medic to loading dock four") is None


def test_a_bad_rhino_file_names_its_line(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("context:\n  expressions:\n    on:\n      - \"turn on $room:room\"\n      - \"[turn, switch on\"\n"
                 "  slots:\n    room: [kitchen]\n")
    with pytest.raises(ContextError) as e:
        import_rhino(p)
    assert e.value.line == 5 and "unclosed" in e.value.message


@pytest.fixture()
def cli():
    import typer

    from hotpath.commands.voice import register

    root, bench = typer.Typer(), typer.Typer()
    register(root, bench)
    return lambda *args: CliRunner().invoke(root, list(args))


def test_cli_validate_compile_test_import(cli, tmp_path):
    r = cli("voice", "context", "validate", str(DEFAULT_CONTEXT))
    assert r.exit_code == 0 and "4 intents" in r.output
    r = cli("voice", "context", "compile", str(DEFAULT_CONTEXT), "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["parser_misses"] == 0 and (tmp_path / "industrial.jsgf").read_text().startswith("#JSGF")
    r = cli("voice", "context", "test", str(DEFAULT_CONTEXT), "need a supervisor at loading dock four", "--json")
    got = json.loads(r.output)
    assert got["intent"] == "SUMMON_TEAM" and got["slots"] == {"team": "supervisor", "location": "dock 4"}
    assert got["action"]["topic"] == "team/summon" and got["reply"] == "Supervisor summoned to dock 4."
    r = cli("voice", "context", "import", str(EXAMPLES / "rhino" / "home_lighting.yml"), "--out", str(tmp_path / "h.yaml"))
    assert r.exit_code == 0 and load_context(tmp_path / "h.yaml").context == "home_lighting"


def test_cli_test_a_recording(cli, tmp_path):
    import shutil
    import subprocess
    import wave

    if shutil.which("espeak-ng") is None:  # a dependency the bootstrap installs: missing is a failure
        pytest.fail("espeak-ng is needed to synthesize the test recording")
    wav = tmp_path / "say.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "send a medic to loading dock four"], check=True)
    with wave.open(str(wav)) as f:
        assert f.getnframes() > 0
    r = cli("voice", "context", "test", str(DEFAULT_CONTEXT), "--wav", str(wav), "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert "stt" in got and got["stt"]["text"]
    if got["stt"]["source"].startswith("grammar"):
        assert got["intent"] == "SUMMON_TEAM"
