"""The SIP dialer's dialog against a scripted UAS on a UDP socket: the ACK of a non-2xx, digest auth,
CANCEL of a call still ringing, and the ACK/BYE of an answered call sent to its Contact along the
Record-Route set."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest

from hotpath.clients.sip import SipDialer, digest_authorization, header_values, parse_response
from hotpath.errors import ServiceUnavailable


class Uas(asyncio.DatagramProtocol):
    """Answers each request with the script's responses for its method; records every request."""

    def __init__(self, script) -> None:
        self.script = script
        self.requests: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.requests.append(data)
        method = data.split(b" ", 1)[0].decode()
        for status, extra, *req in self.script(method, len([r for r in self.requests if r.startswith(method.encode())]), data):
            self.transport.sendto(_response(req[0] if req else data, status, extra), addr)


def _hdr(data: bytes, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", data.decode(), re.M | re.I)
    return m.group(1).strip() if m else ""


def _response(req: bytes, status: int, extra: tuple[str, ...] = ()) -> bytes:
    to = _hdr(req, "To")
    if status >= 200 and ";tag=" not in to:
        to += ";tag=uas1"
    lines = [f"SIP/2.0 {status} X", f"Via: {_hdr(req, 'Via')}", f"From: {_hdr(req, 'From')}", f"To: {to}",
             f"Call-ID: {_hdr(req, 'Call-ID')}", f"CSeq: {_hdr(req, 'CSeq')}", *extra, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _branch(req: bytes) -> str:
    return re.search(r"branch=([^;\s]+)", _hdr(req, "Via")).group(1)


async def _uas(script):
    loop = asyncio.get_running_loop()
    transport, uas = await loop.create_datagram_endpoint(lambda: Uas(script), local_addr=("127.0.0.1", 0))
    return transport, uas, transport.get_extra_info("sockname")[1]


def _by(uas: Uas, method: str) -> list[bytes]:
    return [r for r in uas.requests if r.startswith(method.encode() + b" ")]


async def test_a_busy_answer_is_acked_in_the_invite_transaction() -> None:
    transport, uas, port = await _uas(lambda m, n, d: [(100, ()), (486, ())] if m == "INVITE" else [])
    try:
        res = await SipDialer(f"127.0.0.1:{port}", timeout_s=2).dial("1001")
        await asyncio.sleep(0.1)
    finally:
        transport.close()
    assert not res.answered and res.status == 486
    [invite], [ack] = _by(uas, "INVITE"), _by(uas, "ACK")
    assert _branch(ack) == _branch(invite)  # same transaction
    assert ack.split(b" ")[1] == invite.split(b" ")[1] and "tag=uas1" in _hdr(ack, "To")
    assert _hdr(ack, "CSeq") == "1 ACK"


async def test_a_digest_challenge_is_answered_once() -> None:
    challenge = 'Digest realm="pbx", nonce="abc123", qop="auth", opaque="o1"'

    def script(method, n, data):
        if method == "INVITE":
            return [(407, (f"Proxy-Authenticate: {challenge}",))] if n == 1 else [(200, ("Contact: <sip:1001@127.0.0.1:9>",))]
        return [(200, ())] if method == "BYE" else []

    transport, uas, port = await _uas(script)
    try:
        # the Contact points at a dead port: the BYE gets no answer, but the call was answered
        dialer = SipDialer(f"127.0.0.1:{port}", timeout_s=1, auth_user="edge", password="s3cret")
        with pytest.raises(ServiceUnavailable, match="BYE"):
            await dialer.dial("1001")
    finally:
        transport.close()
    first, second = _by(uas, "INVITE")
    assert _branch(first) != _branch(second) and _hdr(second, "CSeq") == "2 INVITE"
    auth = _hdr(second, "Proxy-Authorization")
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', auth[7:]))
    ha1 = hashlib.md5(b"edge:pbx:s3cret").hexdigest()
    ha2 = hashlib.md5(f"INVITE:{fields['uri']}".encode()).hexdigest()
    want = hashlib.md5(f"{ha1}:abc123:{fields['nc']}:{fields['cnonce']}:auth:{ha2}".encode()).hexdigest()
    assert fields["response"] == want and fields["opaque"] == "o1" and fields["username"] == "edge"
    assert _branch(_by(uas, "ACK")[0]) == _branch(first)  # the 407 was ACKed in its transaction


def test_digest_without_qop_matches_rfc_2617() -> None:
    # RFC 2617 section 3.5's example, without qop (the MD5 of HA1:nonce:HA2)
    value = digest_authorization('Digest realm="r", nonce="n"', method="INVITE", uri="sip:a@b", user="u", password="p")
    ha1, ha2 = hashlib.md5(b"u:r:p").hexdigest(), hashlib.md5(b"INVITE:sip:a@b").hexdigest()
    assert f'response="{hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()}"' in value


async def test_a_call_still_ringing_at_the_timeout_is_cancelled() -> None:
    def script(method, n, data):
        if method == "INVITE":
            return [(180, ())]
        if method == "CANCEL":  # 200 to the CANCEL, then 487 to the INVITE
            invite = next(r for r in uas.requests if r.startswith(b"INVITE"))
            return [(200, ()), (487, (), invite)]
        return []

    transport, uas, port = await _uas(script)
    try:
        with pytest.raises(ServiceUnavailable, match="cancelled"):
            await SipDialer(f"127.0.0.1:{port}", timeout_s=1).dial("1001")
    finally:
        transport.close()
    [invite], [cancel] = _by(uas, "INVITE"), _by(uas, "CANCEL")
    assert _branch(cancel) == _branch(invite) and _hdr(cancel, "CSeq") == "1 CANCEL"
    assert cancel.split(b" ")[1] == invite.split(b" ")[1] and ";tag=" not in _hdr(cancel, "To")
    [ack] = _by(uas, "ACK")  # the 487 is ACKed in the INVITE's transaction
    assert _branch(ack) == _branch(invite) and "tag=uas1" in _hdr(ack, "To")


async def test_ack_and_bye_go_to_the_contact_along_the_record_route() -> None:
    # the "proxy" that recorded the route: it answers the BYE
    ptransport, proxy, pport = await _uas(lambda m, n, d: [(200, ())] if m == "BYE" else [])
    # proxies prepend themselves: the one nearest the caller is listed last
    rr = f"Record-Route: <sip:far.example;lr>, <sip:127.0.0.1:{pport};lr>"
    transport, uas, port = await _uas(
        lambda m, n, d: [(200, ("Contact: <sip:1001@10.9.9.9:5070>", rr))] if m == "INVITE" else [])
    try:
        res = await SipDialer(f"127.0.0.1:{port}", timeout_s=2).dial("1001")
        await asyncio.sleep(0.05)
    finally:
        transport.close()
        ptransport.close()
    assert res.answered and res.hung_up
    [ack], [bye] = _by(proxy, "ACK"), _by(proxy, "BYE")  # sent to the first route, not the PBX address
    for req in (ack, bye):
        assert req.split(b" ")[1] == b"sip:1001@10.9.9.9:5070"  # the remote target
        routes = header_values(req, "route")
        assert routes == [f"<sip:127.0.0.1:{pport};lr>", "<sip:far.example;lr>"]  # reversed for the caller
    assert not _by(uas, "BYE")
    assert parse_response(b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n")[0] == 200
