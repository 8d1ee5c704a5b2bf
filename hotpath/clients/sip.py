"""A minimal SIP user agent client (UDP): places a call to the site's PBX for DIAL_PERSON.

INVITE (with an SDP offer) -> 1xx -> 200 OK -> ACK, then BYE after ``hold_s`` (the edge only sets up
the call; bridging the watch's audio into the RTP session is the media bridge's later job). Requests
are retransmitted on timer T1 doubling, as RFC 3261 has it for unreliable transports. Tested
against ``sipp -sn uas`` as the far end.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from hotpath.errors import BadInput, ServiceUnavailable

__all__ = ["SipDialer", "DialResult", "parse_response"]

T1 = 0.5


@dataclass(frozen=True, slots=True)
class DialResult:
    answered: bool
    status: int
    reason: str
    call_id: str
    setup_ms: float
    """INVITE sent -> 200 OK received."""
    hung_up: bool = False


def parse_response(data: bytes) -> tuple[int, str, dict[str, str]] | None:
    """A SIP response's status, reason and headers (lower-cased names, first value); None if not one."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:
        return None
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    if not head or not head[0].startswith("SIP/2.0 "):
        return None
    parts = head[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, (parts[2] if len(parts) > 2 else ""), headers


class _Proto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

    def datagram_received(self, data, addr) -> None:
        if not self.queue.full():
            self.queue.put_nowait(data)


class SipDialer:
    def __init__(self, pbx: str, *, from_user: str = "hotpath-edge", local_host: str = "127.0.0.1",
                 local_port: int = 0, timeout_s: float = 5.0, hold_s: float = 0.0) -> None:
        host, _, port = pbx.rpartition(":")
        if not host or not port.isdigit():
            raise BadInput(f"SIP PBX address {pbx!r} is not host:port", field="sip_pbx")
        self.pbx = (host, int(port))
        self.from_user = from_user
        self.local = (local_host, local_port)
        self.timeout_s = timeout_s
        self.hold_s = hold_s

    async def dial(self, extension: str) -> DialResult:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_Proto, local_addr=self.local)
        try:
            return await asyncio.wait_for(self._call(transport, proto, extension), self.timeout_s + self.hold_s + 2)
        except asyncio.TimeoutError:
            raise ServiceUnavailable(f"SIP call to {extension} timed out") from None
        finally:
            transport.close()

    async def _call(self, transport, proto: _Proto, ext: str) -> DialResult:
        lhost, lport = transport.get_extra_info("sockname")[:2]
        phost, pport = self.pbx
        call_id = f"{uuid.uuid4().hex}@{lhost}"
        tag = uuid.uuid4().hex[:10]
        uri = f"sip:{ext}@{phost}:{pport}"
        frm = f"<sip:{self.from_user}@{lhost}:{lport}>;tag={tag}"
        sdp = (f"v=0\r\no=- {random.randint(1, 10**9)} 1 IN IP4 {lhost}\r\ns=hotpath\r\nc=IN IP4 {lhost}\r\n"
               f"t=0 0\r\nm=audio {lport + 2 if lport < 65000 else 40000} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

        def request(method: str, cseq: int, to: str, body: str = "", branch: str | None = None) -> bytes:
            lines = [
                f"{method} {uri} SIP/2.0",
                f"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch or 'z9hG4bK' + uuid.uuid4().hex[:16]};rport",
                "Max-Forwards: 70",
                f"From: {frm}",
                f"To: {to}",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} {method}",
                f"Contact: <sip:{self.from_user}@{lhost}:{lport}>",
                "User-Agent: hotpath-voice-edge",
            ]
            if body:
                lines.append("Content-Type: application/sdp")
            lines.append(f"Content-Length: {len(body.encode())}")
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

        t0 = time.perf_counter()
        invite = request("INVITE", 1, f"<{uri}>", sdp)
        final = await self._transact(transport, proto, invite, "INVITE", until_final=True)
        status, reason, headers = final
        setup_ms = (time.perf_counter() - t0) * 1000
        to_hdr = headers.get("to", f"<{uri}>")
        if status >= 300:  # non-2xx final: ACK it (same transaction) and report
            transport.sendto(request("ACK", 1, to_hdr), self.pbx)
            return DialResult(False, status, reason, call_id, setup_ms)
        transport.sendto(request("ACK", 1, to_hdr), self.pbx)
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        bye_status, _, _ = await self._transact(transport, proto, request("BYE", 2, to_hdr), "BYE", until_final=True)
        return DialResult(True, status, reason, call_id, setup_ms, hung_up=200 <= bye_status < 300)

    async def _transact(self, transport, proto: _Proto, msg: bytes, method: str, *, until_final: bool):
        interval, deadline, provisional = T1, time.monotonic() + self.timeout_s, False
        transport.sendto(msg, self.pbx)
        next_send = time.monotonic() + interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise ServiceUnavailable(f"no final SIP response to {method} from {self.pbx[0]}:{self.pbx[1]}")
            try:
                data = await asyncio.wait_for(proto.queue.get(), min(deadline, next_send) - now if not provisional else deadline - now)
            except asyncio.TimeoutError:
                if not provisional and time.monotonic() >= next_send:
                    transport.sendto(msg, self.pbx)  # retransmit (unreliable transport)
                    interval = min(interval * 2, 4.0)
                    next_send = time.monotonic() + interval
                continue
            parsed = parse_response(data)
            if parsed is None or not parsed[2].get("cseq", "").endswith(method):
                continue
            if parsed[0] < 200:
                provisional = True
                continue
            return parsed
