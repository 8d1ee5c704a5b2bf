"""Settings: sources in priority order, validation errors as one ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotpath.config import Settings, load_settings
from hotpath.errors import ConfigError, HotpathError


@pytest.fixture(autouse=True)
def _no_hotpath_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests define their own sources; a HOTPATH_* variable in the caller's shell must not leak in."""
    import os

    for var in [v for v in os.environ if v.startswith("HOTPATH_")]:
        monkeypatch.delenv(var)


def test_defaults_bind_loopback_on_private_ports() -> None:
    s = load_settings()
    assert s.profile == "embedded"
    hosts = {s.redis.host, s.mqtt.host, s.kafka.host, s.cassandra.host, s.ray.host, s.serve.host}
    assert hosts == {"127.0.0.1"}
    # Not the system-wide defaults of the same servers.
    assert s.redis.port != 6379 and s.mqtt.port != 1883 and s.kafka.port != 9092 and s.cassandra.port != 9042


def test_env_beats_yaml_and_overrides_beat_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "hotpath.yaml"
    cfg.write_text("profile: full\nredis:\n  port: 7001\nmqtt:\n  port: 7002\n")
    monkeypatch.setenv("HOTPATH_REDIS__PORT", "7101")
    s = load_settings(cfg)
    assert s.profile == "full"  # from the file
    assert s.mqtt.port == 7002  # from the file
    assert s.redis.port == 7101  # env beats file
    s2 = load_settings(cfg, redis={"port": 7201})
    assert s2.redis.port == 7201  # explicit override beats env


def test_config_file_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  port: 29092\n")
    monkeypatch.setenv("HOTPATH_CONFIG", str(cfg))
    assert load_settings().kafka.port == 29092


def test_runtime_paths_resolve_under_runtime_dir(tmp_path: Path) -> None:
    s = load_settings(runtime_dir=tmp_path)
    assert s.in_runtime(s.sqlite.path) == tmp_path / "data" / "dimensions.sqlite"
    assert s.in_runtime(Path("/abs/x")) == Path("/abs/x")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("profile: laptop\n", "profile"),
        ("redis:\n  port: 99999\n", "redis.port"),
        ("redis:\n  colour: blue\n", "redis.colour"),
        ("- just\n- a list\n", "mapping"),
        ("redis: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_settings_raise_one_config_error(tmp_path: Path, content: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert needle in str(info.value)
    assert isinstance(info.value, HotpathError)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_settings_pickle_for_ray() -> None:
    import pickle

    s = load_settings(profile="full")
    again = pickle.loads(pickle.dumps(s))
    assert type(again) is Settings and again == s
