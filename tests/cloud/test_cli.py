"""``hotpath cloud tenant|key|ingest|ask`` on a scratch runtime folder, and the app's configure step."""

from __future__ import annotations

import json
import re

import pytest

from hotpath.cli import main
from hotpath.config import load_settings

from .conftest import DOCS


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTPATH_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("HOTPATH_CLOUD__STORE", "file")
    return tmp_path


def test_tenant_and_key_commands(runtime, capsys) -> None:
    main(["cloud", "tenant", "add", "acme", "--name", "Acme Corp"])
    key = re.search(r"(hpk_\S+)", capsys.readouterr().out).group(1)
    main(["cloud", "key", "rotate", "acme", "--overlap", "0"])
    new = re.search(r"(hpk_\S+)", capsys.readouterr().out).group(1)
    main(["cloud", "tenant", "list", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["tenant_id"] == "acme" and rows[0]["name"] == "Acme Corp"
    assert [k["active"] for k in rows[0]["keys"]] == [False, True]
    assert key not in (runtime / "data" / "cloud" / "tenants.sqlite").read_bytes().decode("latin-1")
    from hotpath.stores.vectors_factory import open_tenancy

    t = open_tenancy(load_settings())
    assert t.authenticate(f"Bearer {new}", "acme") == "acme"
    main(["cloud", "key", "revoke", "acme"])
    assert "revoked 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["cloud", "tenant", "add", "Bad Name"])
    assert exc.value.code == 2
    assert "invalid tenant id" in capsys.readouterr().err


def test_ingest_and_ask(runtime, capsys) -> None:
    main(["cloud", "tenant", "add", "acme"])
    main(["cloud", "ingest", "acme", str(DOCS)])
    out = capsys.readouterr().out
    assert "[1/" in out and "ppe-policy.md" in out and "file store" in out
    main(["cloud", "ask", "acme", "Where is the fire assembly point?", "--no-llm"])
    answer = json.loads(capsys.readouterr().out)
    assert "north car park" in answer["text"] and answer["citations"][0]["tenant_id"] == "acme"


def test_configure_points_the_edge_at_the_demo_tenant(runtime) -> None:
    from hotpath.graphs.cloud_app import configure

    s = load_settings()
    assert s.voice.cloud.endpoint is None
    s2 = configure(s, "embedded")
    assert s2.voice.cloud.endpoint.endswith("/v1/query") and s2.cloud.store == "file"
    key = s2.voice.cloud.api_key.get_secret_value()
    from hotpath.stores.vectors_factory import open_tenancy

    assert open_tenancy(s2).authenticate(f"Bearer {key}", s.voice.tenant_id) == s.voice.tenant_id
    assert configure(s, "embedded").voice.cloud.api_key.get_secret_value() == key  # stable across runs
    auto = s.model_copy(update={"cloud": s.cloud.model_copy(update={"store": "auto"})})
    assert configure(auto, "full").cloud.store == "postgres"
    assert configure(auto, "embedded").cloud.store == "file"
    assert (runtime / "data" / "cloud" / f"edge-{s.voice.tenant_id}.key").stat().st_mode & 0o777 == 0o600


def test_start_apps_runs_configure_steps_first_and_threads_their_settings() -> None:
    from hotpath.cluster.apps import AppStarter, start_apps

    s = load_settings()
    seen: list[str | None] = []

    def configure(settings, profile):
        edge = settings.voice.cloud.model_copy(update={"endpoint": f"http://x/{profile}"})
        return settings.model_copy(update={"voice": settings.voice.model_copy(update={"cloud": edge})})

    def voice(settings, say):  # started before the configuring app, still sees its settings
        seen.append(settings.voice.cloud.endpoint)
        return []

    def cloud(settings, say):
        seen.append(settings.voice.cloud.endpoint)
        return []

    start_apps(s, "embedded", lambda m: None, [AppStarter("voice", voice), AppStarter("cloud", cloud, configure=configure)])
    assert seen == ["http://x/embedded", "http://x/embedded"]
    assert s.voice.cloud.endpoint is None  # the caller's settings are untouched (frozen)
