"""Typed settings for the whole runtime, in one place.

Sources, highest priority first: keyword overrides passed to :func:`load_settings`, environment
variables ``HOTPATH_*`` (nested with ``__``, e.g. ``HOTPATH_REDIS__PORT=6390``), a YAML file
(``--config FILE`` or ``HOTPATH_CONFIG``), then the defaults below.

Settings objects are passed down explicitly; nothing reads a global.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hotpath.ab.settings import AbSettings
from hotpath.cloud.settings import CloudAppSettings
from hotpath.errors import ConfigError
from hotpath.intent.settings import IntentSettings
from hotpath.recs.settings import RecsSettings
from hotpath.refresh.settings import RefreshSettings
from hotpath.coview.settings import StreamingSettings
from hotpath.voice.settings import VoiceSettings

__all__ = [
    "Profile",
    "Settings",
    "RedisSettings",
    "MqttSettings",
    "KafkaSettings",
    "CassandraSettings",
    "SqliteSettings",
    "EventLogSettings",
    "DuckdbSettings",
    "ZooKeeperSettings",
    "DruidSettings",
    "RaySettings",
    "ServeSettings",
    "load_settings",
    "repo_root",
]

Profile = Literal["embedded", "full"]
LOOPBACK = "127.0.0.1"


def repo_root() -> Path:
    """The checkout holding this package (where pyproject.toml lives), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisSettings(_Section):
    host: str = LOOPBACK
    port: int = Field(16379, ge=1, le=65535)
    db: int = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


class MqttSettings(_Section):
    """The broker, and who hotpath's own clients log in as.

    ``username``/``password`` are the edge's own MQTT user; left unset, the clients use the credentials
    the local broker generated (``<runtime_dir>/mqtt/clients.json``). On a site they come from a Secret
    (``HOTPATH_MQTT__USERNAME`` / ``HOTPATH_MQTT__PASSWORD``).
    """

    host: str = LOOPBACK
    port: int = Field(11883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    auth: bool = True
    """The local broker refuses anonymous clients and applies the per-device ACL (off: anyone may do anything)."""
    auth_dir: Path = Path("mqtt")
    """Device registry, password file, ACL file and the generated service credentials (under runtime_dir)."""
    edge_user: str = "hotpath-edge"
    simulator: bool = True
    """A simulator user that may speak as any watch (``hotpath voice say``, tests, benches): off on a site."""
    simulator_user: str = "hotpath-sim"
    tls_port: int | None = Field(None, ge=1, le=65535)
    """A second listener with TLS, for watches on the network (needs ``tls_certfile`` and ``tls_keyfile``)."""
    tls_host: str = LOOPBACK
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tls_cafile: Path | None = None
    """When set, the TLS listener also asks for client certificates signed by this CA."""

    @model_validator(mode="after")
    def _tls_complete(self) -> MqttSettings:
        if self.tls_port is not None and not (self.tls_certfile and self.tls_keyfile):
            raise ValueError("mqtt.tls_port needs mqtt.tls_certfile and mqtt.tls_keyfile")
        return self


class KafkaSettings(_Section):
    host: str = LOOPBACK
    port: int = Field(19092, ge=1, le=65535)
    controller_port: int = Field(19093, ge=1, le=65535)
    heap_mb: int = 512

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


class CassandraSettings(_Section):
    host: str = LOOPBACK
    port: int = Field(19042, ge=1, le=65535)
    storage_port: int = Field(17000, ge=1, le=65535)
    jmx_port: int = Field(17199, ge=1, le=65535)
    keyspace: str = "hotpath"
    heap_mb: int = 1024


class SqliteSettings(_Section):
    """The embedded dimension store (stands in for Cassandra). Relative paths live in runtime_dir."""

    path: Path = Path("data/dimensions.sqlite")


class EventLogSettings(_Section):
    """The embedded event log (stands in for Kafka). Relative paths live in runtime_dir."""

    path: Path = Path("data/eventlog")
    default_partitions: int = Field(4, ge=1, le=1024)


class DuckdbSettings(_Section):
    """The embedded rollup store (stands in for Druid). Relative paths live in runtime_dir."""

    path: Path = Path("data/rollups.duckdb")


class ZooKeeperSettings(_Section):
    """The local ZooKeeper that Druid's processes find each other through (full profile)."""

    host: str = LOOPBACK
    port: int = Field(12181, ge=1, le=65535)
    heap_mb: int = Field(128, ge=32)

    @property
    def connect(self) -> str:
        return f"{self.host}:{self.port}"


class DruidSettings(_Section):
    """The local Apache Druid of the full profile (best-seller rollups fed from Kafka).

    Four JVMs (coordinator+overlord, broker, historical, indexer) at ``heap_mb`` each; Derby
    metadata and local deep storage live under ``<runtime_dir>/services/druid``. ``rollups``
    makes :func:`hotpath.stores.rollups.open_rollup_store` answer from Druid in the full profile
    (off by default: DuckDB keeps answering until the recs side waits for ingestion).
    """

    host: str = LOOPBACK
    broker_port: int = Field(18082, ge=1, le=65535)
    coordinator_port: int = Field(18081, ge=1, le=65535)
    historical_port: int = Field(18083, ge=1, le=65535)
    indexer_port: int = Field(18091, ge=1, le=65535)
    derby_port: int = Field(18084, ge=1, le=65535)
    heap_mb: int = Field(384, ge=128)
    indexer_heap_mb: int = Field(448, ge=128)
    rollups: bool = False
    datasource: str = Field("hotpath_orders", pattern=r"^[A-Za-z0-9_]+$")
    topic: str = Field("hotpath.druid.orders", pattern=r"^[A-Za-z0-9._-]+$")
    topic_partitions: int = Field(1, ge=1, le=64)
    offsets_topic: str = Field("hotpath.druid.order-offsets", pattern=r"^[A-Za-z0-9._-]+$")
    task_duration: str = "PT1H"
    late_message_rejection: str = "PT24H"
    """Orders older than this (before the ingestion task started) are dropped and counted as thrownAway."""
    early_message_rejection: str = "PT1H"
    """Orders more than this in the future (after the task's end) are dropped the same way."""
    query_timeout_s: float = Field(15.0, gt=0)
    read_your_writes_s: float = Field(60.0, ge=0)
    """A rollup store's first read after its own writes waits up to this long for Druid to ingest them."""
    top_query: Literal["sql", "native"] = "sql"
    """How ``top_sellers`` asks Druid: SQL, or the native groupBy it plans to (skips SQL planning:
    about half the latency on a loaded 2-core machine; same rows)."""
    refresh_s: float = Field(5.0, gt=0)
    """How often the best-seller refresh loop rewrites ``cat:bestsellers:{cat}`` from Druid."""
    cache_ttl_s: float = Field(120.0, gt=0)

    @property
    def sql_url(self) -> str:
        return f"http://{self.host}:{self.broker_port}/druid/v2/sql"

    @property
    def overlord_url(self) -> str:
        return f"http://{self.host}:{self.coordinator_port}"


class RaySettings(_Section):
    host: str = LOOPBACK
    port: int = Field(16390, ge=1, le=65535)  # GCS port of the local head
    dashboard_port: int = Field(18265, ge=1, le=65535)
    num_cpus: int | None = None
    object_store_memory_mb: int = 512
    namespace: str = "hotpath"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class ServeSettings(_Section):
    host: str = LOOPBACK
    http_port: int = Field(18000, ge=1, le=65535)
    grpc_port: int = Field(19000, ge=1, le=65535)


class Settings(BaseSettings):
    """Everything hotpath can be told. ``profile`` picks which backends stand behind the interfaces."""

    model_config = SettingsConfigDict(
        env_prefix="HOTPATH_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    profile: Profile = "embedded"
    runtime_dir: Path = Field(default_factory=lambda: repo_root() / ".hotpath")
    redis: RedisSettings = RedisSettings()
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    cassandra: CassandraSettings = CassandraSettings()
    sqlite: SqliteSettings = SqliteSettings()
    event_log: EventLogSettings = EventLogSettings()
    duckdb: DuckdbSettings = DuckdbSettings()
    zookeeper: ZooKeeperSettings = ZooKeeperSettings()
    druid: DruidSettings = DruidSettings()
    ray: RaySettings = RaySettings()
    serve: ServeSettings = ServeSettings()
    recs: RecsSettings = RecsSettings()
    streaming: StreamingSettings = StreamingSettings()
    voice: VoiceSettings = VoiceSettings()
    intent: IntentSettings = IntentSettings()
    refresh: RefreshSettings = RefreshSettings()
    ab: AbSettings = AbSettings()
    cloud: CloudAppSettings = CloudAppSettings()

    @field_validator("runtime_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    def in_runtime(self, path: Path) -> Path:
        """Resolve a settings path: absolute stays, relative lives under runtime_dir."""
        return path if path.is_absolute() else self.runtime_dir / path

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


class _YamlSource(PydanticBaseSettingsSource):
    """Lays the YAML file's values under the environment's."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


_yaml_data: ContextVar[dict[str, Any]] = ContextVar("_yaml_data", default={})


class _LoadingSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls, _yaml_data.get()))


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, a YAML file, ``HOTPATH_*`` and explicit overrides.

    Raises :class:`ConfigError` with every invalid field named, never a pydantic traceback.
    """
    file = config_file or os.environ.get("HOTPATH_CONFIG")
    data: dict[str, Any] = _read_yaml(Path(file)) if file else {}
    token = _yaml_data.set(data)
    try:
        loaded = _LoadingSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    finally:
        _yaml_data.reset(token)
    # A plain Settings (picklable by Ray, no env re-read): validate the resolved values again.
    return Settings.model_validate(loaded.model_dump())
