"""Payload validation, framing and QoS-1 de-dup / re-order."""

from __future__ import annotations

import struct

import pytest

from hotpath.errors import BadInput
from hotpath.voice.audio import MAGIC, AudioChunk, Sequencer, encode_framed, parse_payload


def test_raw_and_framed_round_trip():
    pcm = b"\x01\x00" * 3200
    raw = parse_payload("w-1", pcm, max_bytes=64000)
    assert raw.pcm == pcm and raw.seq is None
    framed = parse_payload("w-1", encode_framed(pcm, seq=7, start=True, sent_at=1.5), max_bytes=64000)
    assert (framed.pcm, framed.seq, framed.start, framed.stop, framed.meta) == (pcm, 7, True, False, {"sent_at": 1.5})


@pytest.mark.parametrize(
    "payload, field",
    [
        (b"", "size"),
        (b"\x00" * 3, "size"),
        (b"\x00" * 70000, "size"),
        (MAGIC + b"\x00", "header"),
        (MAGIC + struct.pack(">H", 500) + b"{}", "header"),
        (MAGIC + struct.pack(">H", 5) + b"nope!" + b"\x00\x00", "header"),
        (encode_framed(b"\x00\x00", seq=-1), "seq"),
        (encode_framed(b"\x00\x00", seq=1, rate=8000), "rate"),
        (encode_framed(b"\x00\x00\x00", seq=1), "size"),
        (encode_framed(b"", seq=1), "size"),
    ],
)
def test_bad_payloads_are_refused_with_a_field(payload, field):
    with pytest.raises(BadInput) as err:
        parse_payload("w-1", payload, max_bytes=64000)
    assert err.value.field == field


def _c(seq, **kw):
    return AudioChunk("w-1", b"\x00\x00", seq=seq, **kw)


def test_sequencer_dedups_and_reorders():
    s = Sequencer(window=4)
    out = []
    for seq in [0, 2, 1, 1, 3, 0, 4]:
        out += [c.seq for c in s.push(_c(seq))]
    assert out == [0, 1, 2, 3, 4]
    assert s.duplicates == 2


def test_sequencer_gives_up_on_a_lost_chunk_when_the_window_overflows():
    s = Sequencer(window=3)
    out = [c.seq for c in s.push(_c(0))]
    for seq in [2, 3, 4, 5]:  # 1 is lost
        out += [c.seq for c in s.push(_c(seq))]
    assert out == [0, 2, 3, 4, 5]
    assert s.skipped == 1


def test_start_flag_resets_the_sequence():
    s = Sequencer(window=4)
    assert [c.seq for c in s.push(_c(10))] == [10]
    assert [c.seq for c in s.push(_c(0, start=True))] == [0]
    assert [c.seq for c in s.push(_c(1))] == [1]
