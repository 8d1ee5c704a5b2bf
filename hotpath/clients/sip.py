"""A minimal SIP user agent client (UDP): places a call to the site's PBX for DIAL_PERSON.

INVITE (with an SDP offer) -> 1xx -> 200 OK -> ACK, then BYE after ``hold_s`` (the edge only sets up
the call; bridging the watch's audio into the RTP session is the media bridge's later job). Requests
are retransmitted on timer T1 doubling, as RFC 3261 has it for unreliable transports. The dialog
follows RFC 3261: a non-2xx final is ACKed in the INVITE's own transaction (same branch, the
response's To tag); a 401/407 challenge is answered once with digest credentials (RFC 2617 MD5,
``qop=auth`` when offered); an INVITE still ringing at the timeout is CANCELled; the ACK and BYE of
an answered call go to the 200's Contact along the Record-Route set. Tested against
``sipp -sn uas`` and a scripted UAS (tests/voice/test_sip.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
import uuid
from dataclasses import dataclass

from hotpath.errors import BadInput, ServiceUnavailable

__all__ = ["SipDialer", "DialResult", "parse_response", "header_values", "digest_authorization"]

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
        headers.setdefault(_COMPACT.get(name.strip().lower(), name.strip().lower()), value.strip())
    return status, (parts[2] if len(parts) > 2 else ""), headers


_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


def header_values(data: bytes, name: str) -> list[str]:
    """Every value of a header (repeated lines and comma-separated lists), in order."""
    head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    out: list[str] = []
    for line in head:
        n, _, value = line.partition(":")
        if n.strip().lower() == name:
            out.extend(v.strip() for v in re.split(r",(?=\s*<)", value) if v.strip())
    return out


def _uri(value: str) -> str:
    """The URI of a name-addr (``"x" <sip:a@b>;tag=..``) or addr-spec."""
    m = re.search(r"<([^>]+)>", value)
    return m.group(1) if m else value.split(";", 1)[0].strip()


def _hostport(uri: str, default: tuple[str, int]) -> tuple[str, int]:
    m = re.match(r"sips?:(?:[^@;>]+@)?([^:;>]+)(?::(\d+))?", uri)
    if not m:
        return default
    return m.group(1), int(m.group(2) or 5060)


def digest_authorization(challenge: str, *, method: str, uri: str, user: str, password: str,
                         cnonce: str | None = None, nc: int = 1) -> str:
    """The ``Authorization`` value answering a ``Digest`` challenge (RFC 2617; MD5, ``qop=auth``)."""
    if not challenge.lower().startswith("digest"):
        raise BadInput(f"unsupported SIP auth scheme: {challenge.split(' ', 1)[0]}", field="sip_auth")
    params = {k.lower(): v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge[6:])}
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise BadInput(f"unsupported SIP digest algorithm {algorithm}", field="sip_auth")
    realm, nonce = params.get("realm", ""), params.get("nonce", "")

    def md5(x: str) -> str:
        return hashlib.md5(x.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = cnonce or uuid.uuid4().hex[:16]
        ncs = f"{nc:08x}"
        fields += [f'response="{md5(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")}"', "qop=auth", f"nc={ncs}",
                   f'cnonce="{cnonce}"']
    else:
        fields.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    fields.append("algorithm=MD5")
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


class _Proto(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

    def datagram_received(self, data, addr) -> None:  # noqa: ARG002
        if not self.queue.full():
            self.queue.put_nowait(data)


class SipDialer:
    def __init__(self, pbx: str, *, from_user: str = "hotpath-edge", local_host: str = "127.0.0.1",
                 local_port: int = 0, timeout_s: float = 5.0, hold_s: float = 0.0,
                 auth_user: str | None = None, password: str = "") -> None:
        host, _, port = pbx.rpartition(":")
        if not host or not port.isdigit():
            raise BadInput(f"SIP PBX address {pbx!r} is not host:port", field="sip_pbx")
        self.pbx = (host, int(port))
        self.from_user = from_user
        self.local = (local_host, local_port)
        self.timeout_s = timeout_s
        self.hold_s = hold_s
        self.auth_user = auth_user or from_user
        self.password = password

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

        def request(method: str, cseq: int, to: str, *, target: str = uri, branch: str | None = None, body: str = "",
                    extra: tuple[str, ...] = ()) -> bytes:
            lines = [
                f"{method} {target} SIP/2.0",
                f"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch or new_branch()};rport",
                "Max-Forwards: 70",
                f"From: {frm}",
                f"To: {to}",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} {method}",
                f"Contact: <sip:{self.from_user}@{lhost}:{lport}>",
                "User-Agent: hotpath-voice-edge",
                *extra,
            ]
            if body:
                lines.append("Content-Type: application/sdp")
            lines.append(f"Content-Length: {len(body.encode())}")
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

        t0 = time.perf_counter()
        cseq, auth, authed = 1, (), False
        while True:
            branch = new_branch()
            invite = request("INVITE", cseq, f"<{uri}>", branch=branch, body=sdp, extra=auth)
            try:
                final, raw = await self._transact(transport, proto, invite, "INVITE", branch=branch)
            except _Ringing as ringing:  # ringing at the timeout: CANCEL the INVITE (same branch, same CSeq)
                cancel = request("CANCEL", cseq, f"<{uri}>", branch=branch)
                try:
                    await self._transact(transport, proto, cancel, "CANCEL", branch=branch, timeout_s=T1 * 2)
                except ServiceUnavailable:
                    pass
                # the INVITE's 487 (if it comes) is ACKed in its transaction
                late = await self._drain_final(proto, branch, timeout_s=T1)
                if late is not None:
                    transport.sendto(request("ACK", cseq, late[2].get("to", f"<{uri}>"), branch=branch), self.pbx)
                raise ServiceUnavailable(f"SIP call to {ext} not answered within {self.timeout_s:.0f} s (cancelled)") from ringing
            status, reason, headers = final
            to_hdr = headers.get("to", f"<{uri}>")
            if status >= 300:  # non-2xx final: ACK it in the INVITE's transaction (same branch)
                transport.sendto(request("ACK", cseq, to_hdr, branch=branch), self.pbx)
                if status in (401, 407) and not authed and self.password:
                    name = "www-authenticate" if status == 401 else "proxy-authenticate"
                    answer = "Authorization" if status == 401 else "Proxy-Authorization"
                    challenge = headers.get(name, "")
                    auth = (f"{answer}: " + digest_authorization(challenge, method="INVITE", uri=uri,
                                                                 user=self.auth_user, password=self.password),)
                    cseq, authed = cseq + 1, True
                    continue
                return DialResult(False, status, reason, call_id, (time.perf_counter() - t0) * 1000)
            break
        setup_ms = (time.perf_counter() - t0) * 1000
        # The dialog: requests go to the remote target (the 200's Contact) along the route set (the
        # Record-Route values, reversed for the caller), to the first loose router when there is one.
        target = _uri(headers.get("contact", f"<{uri}>"))
        routes = list(reversed(header_values(raw, "record-route")))
        route_hdrs = tuple(f"Route: {r}" for r in routes)
        if routes and ";lr" in routes[0]:
            dest = _hostport(_uri(routes[0]), self.pbx)
        elif routes:  # a strict router: it takes the Request-URI, the target goes last in the Route set
            dest = _hostport(_uri(routes[0]), self.pbx)
            route_hdrs = tuple(f"Route: {r}" for r in routes[1:]) + (f"Route: <{target}>",)
            target = _uri(routes[0])
        else:
            dest = _hostport(target, self.pbx)
        transport.sendto(request("ACK", cseq, to_hdr, target=target, extra=route_hdrs), dest)
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        bye = request("BYE", cseq + 1, to_hdr, target=target, extra=route_hdrs)
        (bye_status, _, _), _ = await self._transact(transport, proto, bye, "BYE", dest=dest)
        return DialResult(True, status, reason, call_id, setup_ms, hung_up=200 <= bye_status < 300)

    async def _drain_final(self, proto: _Proto, branch: str, *, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(proto.queue.get(), left)
            except asyncio.TimeoutError:
                return None
            parsed = parse_response(data)
            if parsed and parsed[0] >= 300 and branch in parsed[2].get("via", "") and parsed[2].get("cseq", "").endswith("INVITE"):
                return parsed
        return None

    async def _transact(self, transport, proto: _Proto, msg: bytes, method: str, *, branch: str | None = None,
                        dest: tuple[str, int] | None = None, timeout_s: float | None = None):
        """Send ``msg`` (retransmitted on T1 doubling until a provisional) and wait for its final
        response: ``((status, reason, headers), raw)``. An INVITE that got a provisional but no final
        by the timeout raises :class:`_Ringing` (the caller CANCELs it)."""
        dest = dest or self.pbx
        interval, provisional = T1, False
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        transport.sendto(msg, dest)
        next_send = time.monotonic() + interval
        while True:
            now = time.monotonic()
            if now >= deadline:
                if provisional and method == "INVITE":
                    raise _Ringing()
                raise ServiceUnavailable(f"no final SIP response to {method} from {dest[0]}:{dest[1]}")
            try:
                data = await asyncio.wait_for(proto.queue.get(), min(deadline, next_send) - now if not provisional else deadline - now)
            except asyncio.TimeoutError:
                if not provisional and time.monotonic() >= next_send:
                    transport.sendto(msg, dest)  # retransmit (unreliable transport)
                    interval = min(interval * 2, 4.0)
                    next_send = time.monotonic() + interval
                continue
            parsed = parse_response(data)
            if parsed is None or not parsed[2].get("cseq", "").endswith(method):
                continue
            if branch is not None and branch not in parsed[2].get("via", branch):
                continue  # another transaction's response (a late retransmission)
            if parsed[0] < 200:
                provisional = True
                continue
            return parsed, data


class _Ringing(ServiceUnavailable):
    """An INVITE with a provisional response and no final one by the timeout."""

    def __init__(self) -> None:
        super().__init__("SIP INVITE still ringing at the timeout")


def new_branch() -> str:
    return "z9hG4bK" + uuid.uuid4().hex[:16]
