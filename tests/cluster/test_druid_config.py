"""Druid and ZooKeeper control without servers: generated configs bind loopback, keep state in the
runtime folder, and the supervisor spec of the repo renders with the settings."""

from __future__ import annotations

import json

from hotpath.cluster.druid import ROLES, DruidService, supervisor_spec
from hotpath.cluster.zookeeper import ZooKeeperService
from hotpath.config import Settings
from hotpath.stores.rollups import DuckDbRollupStore, open_rollup_store


def _settings(tmp_path) -> Settings:  # noqa: ANN001
    return Settings(runtime_dir=tmp_path, druid={"topic": "t.orders", "datasource": "ds_x"})


def test_druid_config_binds_loopback_and_lives_in_the_runtime_dir(tmp_path) -> None:  # noqa: ANN001
    s = _settings(tmp_path)
    d = DruidService(s)
    common = d.common_properties()
    assert common["druid.host"] == "127.0.0.1" and common["druid.zk.service.host"] == "127.0.0.1:12181"
    assert common["druid.metadata.storage.connector.connectURI"].startswith(f"jdbc:derby://127.0.0.1:{s.druid.derby_port}/{tmp_path}")
    assert common["druid.storage.storageDirectory"].startswith(str(tmp_path))
    ports = {d.role_port(r) for r in ROLES}
    assert ports == {18081, 18082, 18083, 18091}
    for role in ROLES:
        props = d.role_properties(role)
        assert props["druid.service"] == f"druid/{role}" and props["druid.plaintextPort"] == str(d.role_port(role))
        for key, value in props.items():
            if key.endswith(("Dir", "tmpDir", "locations")):
                assert str(tmp_path) in value, key
    assert d.role_properties("coordinator")["druid.coordinator.asOverlord.enabled"] == "true"
    jvm = d.jvm_options("broker")
    assert "-Xmx384m" in jvm and "-Duser.timezone=UTC" in jvm


def test_zookeeper_config(tmp_path) -> None:  # noqa: ANN001
    cfg = ZooKeeperService(_settings(tmp_path)).config()
    assert cfg["clientPortAddress"] == "127.0.0.1" and cfg["clientPort"] == "12181"
    assert cfg["admin.enableServer"] == "false" and cfg["dataDir"].startswith(str(tmp_path))


def test_supervisor_spec_renders_from_settings(tmp_path) -> None:  # noqa: ANN001
    spec = supervisor_spec(_settings(tmp_path))
    assert "${" not in json.dumps(spec)
    io, schema = spec["spec"]["ioConfig"], spec["spec"]["dataSchema"]
    assert io["topic"] == "t.orders" and io["consumerProperties"]["bootstrap.servers"] == "127.0.0.1:19092"
    assert io["lateMessageRejectionPeriod"] == "PT24H" and io["earlyMessageRejectionPeriod"] == "PT1H"
    assert schema["dataSource"] == "ds_x"
    assert schema["granularitySpec"]["queryGranularity"] == "FIVE_MINUTE" and schema["granularitySpec"]["rollup"]
    assert {m["name"] for m in schema["metricsSpec"]} == {"count", "units", "revenue"}
    assert schema["dimensionsSpec"]["dimensions"] == ["cat", "master"]


def test_rollup_store_by_profile_and_setting(tmp_path) -> None:  # noqa: ANN001
    from hotpath.stores.druid_rollups import DruidRollups

    for profile, on, cls in (("embedded", True, DuckDbRollupStore), ("full", False, DuckDbRollupStore), ("full", True, DruidRollups)):
        s = Settings(profile=profile, runtime_dir=tmp_path, druid={"rollups": on, "broker_port": 1})
        store = open_rollup_store(s)  # connects to nothing
        try:
            assert isinstance(store, cls), (profile, on)
        finally:
            store.close()
