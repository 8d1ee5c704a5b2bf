"""Who may speak on the broker: the password/ACL rendering (fast) and the real Mosquitto enforcing it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path

import aiomqtt
import pytest

from hotpath.cluster.mosquitto import MosquittoService, mqtt_connect
from hotpath.cluster.base import NotReady
from hotpath.cluster.mqtt_auth import (
    DeviceRegistry,
    ServiceUser,
    check_device_id,
    hash_password,
    render_acl,
    verify_password,
)
from hotpath.config import Settings, load_settings
from hotpath.errors import BadInput, NotFound
from hotpath.streams.mqtt_login import client_login


# ---------------------------------------------------------------------------- plain logic
def test_hash_is_mosquitto_pbkdf2_sha512_and_verifies() -> None:
    h = hash_password("s3cret", salt=b"0123456789ab")
    assert h.startswith("$7$101$") and len(h.split("$")) == 5
    assert verify_password("s3cret", h) and not verify_password("S3cret", h)


def test_device_ids_are_one_topic_level() -> None:
    for bad in ("", "a/b", "w+", "w#", "has space", "x" * 65):
        with pytest.raises(BadInput):
            check_device_id(bad)
    with pytest.raises(BadInput, match="reserved"):
        check_device_id("hotpath-edge", ("hotpath-edge",))
    assert check_device_id("w-17.a_b") == "w-17.a_b"


def test_registry_round_trip_and_errors(tmp_path: Path) -> None:
    reg = DeviceRegistry.load(tmp_path / "devices.json")
    pw = reg.add("w-1", location="dock 4")
    with pytest.raises(BadInput, match="already provisioned"):
        reg.add("w-1")
    reg.save()
    again = DeviceRegistry.load(tmp_path / "devices.json")
    assert verify_password(pw, again.devices["w-1"].hash) and again.devices["w-1"].location == "dock 4"
    assert pw not in (tmp_path / "devices.json").read_text()  # hashes only on disk
    new = again.add("w-1", replace=True)
    assert new != pw and again.devices["w-1"].location == "dock 4"
    with pytest.raises(NotFound):
        again.remove("w-404")


def test_acl_gives_anonymous_nothing_and_devices_their_own_topics(tmp_path: Path) -> None:
    reg = DeviceRegistry(tmp_path / "d.json")
    reg.add("w-1")
    acl = render_acl(reg.devices, [ServiceUser("edge", "edge", "x")], prefix="site/")
    body = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    assert body[0].startswith("user ")  # no rule before the first user: anonymous has none
    dev = acl.split("user w-1\n")[1].splitlines()
    assert dev[:3] == ["topic write site/wearable/w-1/audio", "topic read site/wearable/w-1/tts",
                       "topic read site/wearable/w-1/events"]
    summon = [ln for ln in body if "team/summon" in ln]
    assert summon == ["topic readwrite site/team/summon"]  # the edge's user only


# ---------------------------------------------------------------------------- the real broker


@pytest.fixture
def broker(settings: Settings):
    mq = MosquittoService(settings)
    if not mq.running():
        pytest.skip("the local Mosquitto is not running (hotpath services up)")
    made: list[str] = []

    def provision(name: str) -> tuple[str, str]:
        dev = f"{name}-{uuid.uuid4().hex[:6]}"
        reg = mq.registry()
        pw = reg.add(dev)
        reg.save()
        made.append(dev)
        return dev, pw

    yield mq, provision
    reg = mq.registry()
    for d in made:
        reg.devices.pop(d, None)
    reg.save()
    mq.apply_auth()


def _client(s: Settings, **login) -> aiomqtt.Client:
    return aiomqtt.Client(s.mqtt.host, s.mqtt.port, timeout=5, **login)


async def _drain(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got = []
    try:
        async with asyncio.timeout(seconds):
            async for m in client.messages:
                got.append((m.topic.value, bytes(m.payload)))
    except TimeoutError:
        pass
    return got


@pytest.mark.services
async def test_anonymous_and_wrong_password_are_refused(settings: Settings, broker) -> None:
    mq, provision = broker
    dev, pw = provision("w-anon")
    mq.apply_auth()
    with pytest.raises(aiomqtt.MqttError):
        async with _client(settings):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with _client(settings, username=dev, password=pw + "x"):
            pass
    with pytest.raises(NotReady, match="code 5"):
        mqtt_connect(settings.mqtt.host, settings.mqtt.port)  # a raw anonymous CONNECT
    mqtt_connect(settings.mqtt.host, settings.mqtt.port, username=dev, password=pw)


@pytest.mark.services
async def test_device_cannot_speak_as_another_nor_hear_it_nor_summon(settings: Settings, broker) -> None:
    mq, provision = broker
    (a, pa), (b, pb) = provision("w-a"), provision("w-b")
    mq.apply_auth()
    async with _client(settings, **client_login("edge", settings)) as edge, \
            _client(settings, username=a, password=pa) as ca, _client(settings, username=b, password=pb) as cb:
        await edge.subscribe("wearable/+/audio", qos=1)
        await edge.subscribe("team/summon", qos=1)
        await ca.subscribe(f"wearable/{b}/audio", qos=1)  # eavesdrop on B's microphone
        await ca.subscribe("wearable/+/audio", qos=1)
        await ca.subscribe(f"wearable/{b}/tts", qos=1)
        await cb.publish(f"wearable/{b}/audio", b"b-own", qos=1)
        await ca.publish(f"wearable/{b}/audio", b"a-as-b", qos=1)  # spoof B
        await ca.publish(f"wearable/{a}/audio", b"a-own", qos=1)
        await ca.publish("team/summon", b"{}", qos=1)  # only the edge may summon
        await edge.publish(f"wearable/{b}/tts", b"for-b", qos=1)
        seen_by_edge, seen_by_a = await asyncio.gather(_drain(edge, 2.0), _drain(ca, 0.5))
    assert sorted(seen_by_edge) == sorted([(f"wearable/{b}/audio", b"b-own"), (f"wearable/{a}/audio", b"a-own")])
    assert seen_by_a == []


@pytest.mark.services
async def test_revoked_device_is_cut_off_without_a_broker_restart(settings: Settings, broker) -> None:
    mq, provision = broker
    dev, pw = provision("w-rev")
    mq.apply_auth()
    pid = mq.record().pid
    async with _client(settings, **client_login("edge", settings)) as edge, \
            _client(settings, username=dev, password=pw) as watch:
        await edge.subscribe(f"wearable/{dev}/audio", qos=1)
        await watch.publish(f"wearable/{dev}/audio", b"before", qos=1)
        assert await _drain(edge, 1.0) == [(f"wearable/{dev}/audio", b"before")]
        reg = mq.registry()
        reg.remove(dev)
        reg.save()
        assert mq.apply_auth()  # files rewritten + SIGHUP
        await asyncio.sleep(0.5)
        try:
            await watch.publish(f"wearable/{dev}/audio", b"after", qos=1)
        except aiomqtt.MqttError:
            pass  # the broker dropped the connection: cut off
        assert await _drain(edge, 1.0) == []
    with pytest.raises(aiomqtt.MqttError):
        async with _client(settings, username=dev, password=pw):
            pass
    assert mq.record().pid == pid  # the same broker process: reloaded, not restarted


# ---------------------------------------------------------------------------- TLS listener
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.services
async def test_tls_listener_by_config(tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    port, tls_port = _free_port(), _free_port()
    s = load_settings(runtime_dir=tmp_path / "rt", mqtt={"port": port, "tls_port": tls_port,
                                                         "tls_certfile": str(cert), "tls_keyfile": str(key)})
    mq = MosquittoService(s)
    mq.start()
    try:
        login = client_login("edge", s)
        import ssl

        ctx = ssl.create_default_context(cafile=str(cert))
        async with aiomqtt.Client("127.0.0.1", tls_port, timeout=5, tls_context=ctx, **login) as c:
            await c.subscribe("team/summon")
        with pytest.raises(aiomqtt.MqttError):  # TLS still asks for a login
            async with aiomqtt.Client("127.0.0.1", tls_port, timeout=5, tls_context=ctx):
                pass
        with pytest.raises(aiomqtt.MqttError):  # plain MQTT on the TLS port fails
            async with aiomqtt.Client("127.0.0.1", tls_port, timeout=3, **login):
                pass
    finally:
        mq.stop()


@pytest.mark.services
async def test_a_running_anonymous_broker_takes_the_acl_on_services_up_without_a_restart(tmp_path: Path) -> None:
    """What a checkout that ran the old open broker sees on its next ``hotpath services up``."""
    port = _free_port()
    rt = tmp_path / "rt"
    open_mq = MosquittoService(load_settings(runtime_dir=rt, mqtt={"port": port, "auth": False}))
    assert open_mq.start() == "started"
    try:
        async with aiomqtt.Client("127.0.0.1", port, timeout=5):
            pass  # anyone gets in
        s = load_settings(runtime_dir=rt, mqtt={"port": port})
        mq = MosquittoService(s)
        pid = mq.record().pid
        assert mq.start() == "running" and mq.record().pid == pid  # reloaded in place
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client("127.0.0.1", port, timeout=5):
                pass
        async with aiomqtt.Client("127.0.0.1", port, timeout=5, **client_login("edge", s)):
            pass
    finally:
        open_mq.stop()


def test_devices_cli_add_list_export_remove(tmp_path: Path) -> None:
    import json
    import os
    import sys

    env = {**os.environ, "HOTPATH_RUNTIME_DIR": str(tmp_path / "rt"), "HOTPATH_MQTT__PORT": str(_free_port())}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hotpath.cli", "devices", *args], capture_output=True,
                              text=True, timeout=120, env=env)

    added = cli("add", "w-7", "--location", "dock 9", "--json")
    assert added.returncode == 0, added.stderr
    pw = json.loads(added.stdout)["password"]
    listed = json.loads(cli("list", "--json").stdout)
    assert [(d["id"], d["location"]) for d in listed] == [("w-7", "dock 9")]
    bad = cli("add", "w/8")
    assert bad.returncode == 2 and "not allowed" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("export", "--out", str(tmp_path / "out")).returncode == 0
    passwd = (tmp_path / "out" / "passwd").read_text()
    assert "w-7:$7$" in passwd and "hotpath-edge:$7$" in passwd and "hotpath-sim" not in passwd  # no simulator on a site
    assert pw not in passwd and (tmp_path / "out" / "edge-password").read_text()
    assert "user w-7\ntopic write wearable/w-7/audio" in (tmp_path / "out" / "acl").read_text()
    assert cli("remove", "w-7").returncode == 0
    gone = cli("remove", "w-7")
    assert gone.returncode == 2 and "not provisioned" in gone.stderr
