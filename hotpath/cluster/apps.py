"""The extension point of ``hotpath up``: app starters run once the services and Ray are up.

An app starter is ``start(settings, say) -> list[Endpoint]``: it deploys its application (a Ray
Serve app, an actor, ...) on the running cluster and returns what it exposes, which ``hotpath up``
prints. Starters are named by ``"module:function"`` and imported only when run, so listing one
costs nothing at import time. A new application adds one ``AppStarter`` to ``APP_STARTERS``.

(Serve's access logs should be off: ``serve.start(logging_config=LoggingConfig(enable_access_log=False))``.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from hotpath.config import Settings
from hotpath.errors import HotpathError, ServiceError

__all__ = ["Endpoint", "AppStarter", "APP_STARTERS", "start_apps"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One thing an app exposes, printed by ``hotpath up``."""

    app: str
    what: str
    """e.g. ``HTTP``, ``gRPC``, ``MQTT topic``."""
    where: str
    """A URL, ``host:port`` or topic."""


StartFn = Callable[[Settings, Callable[[str], None]], "list[Endpoint]"]


@dataclass(frozen=True, slots=True)
class AppStarter:
    """An application ``hotpath up`` starts: ``target`` is ``"package.module:function"``."""

    name: str
    target: str | StartFn
    """``"package.module:function"`` (imported when run) or the function itself."""
    profiles: tuple[str, ...] = ("embedded", "full")
    configure: str | None = None
    """Optional ``"package.module:function"``, ``(settings, profile) -> Settings``, run before any app
    starts: what it returns is the settings every later starter gets (e.g. the cloud app points the
    voice edge at itself)."""

    def load(self) -> StartFn:
        return self._load(self.target)

    def _load(self, target):  # noqa: ANN001, ANN202
        if callable(target):
            return target
        module_name, _, func = target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), func)
        except (ImportError, AttributeError) as exc:
            raise ServiceError(f"app {self.name}: cannot load {target}: {exc}") from exc


APP_STARTERS: list[AppStarter] = [
    # Recommendations: generates and loads the demo catalog when absent, deploys the Serve app.
    AppStarter("recs", "hotpath.graphs.recs_app:start"),
    # Streaming co-views fed by a generator, so the related endpoint visibly changes.
    AppStarter("coview", "hotpath.graphs.coview_app:start"),
    # Cloud assistant: multi-tenant RAG gateway (demo tenant, its documents, llama.cpp when built);
    # its configure step points the voice edge at it before the voice app starts.
    AppStarter("cloud", "hotpath.graphs.cloud_app:start", configure="hotpath.graphs.cloud_app:configure"),
    # Voice edge: MQTT ingress, device stream actors, gRPC speech-to-text, intent, actions, TTS.
    AppStarter("voice", "hotpath.graphs.voice_edge_app:start"),
    # Metrics of every app: one exporter actor polling their stats() into ray.util.metrics.
    AppStarter("metrics", "hotpath.graphs.metrics_app:start"),
]
"""Run in order by ``hotpath up`` after the services."""


def start_apps(
    settings: Settings, profile: str, say: Callable[[str], None], starters: list[AppStarter] | None = None
) -> list[Endpoint]:
    """Run every starter enabled for ``profile``; a failing one raises ServiceError naming it."""
    endpoints: list[Endpoint] = []
    chosen = [s for s in (APP_STARTERS if starters is None else starters) if profile in s.profiles]
    for starter in chosen:
        if starter.configure is not None:
            settings = starter._load(starter.configure)(settings, profile)
    for starter in chosen:
        fn = starter.load()
        say(f"  app {starter.name}: starting")
        try:
            endpoints.extend(fn(settings, say))
        except HotpathError:
            raise
        except Exception as exc:
            raise ServiceError(
                f"app {starter.name} failed to start: {type(exc).__name__}: {exc}",
                hint=f"see the Ray logs under {settings.runtime_dir / 'services' / 'ray'}",
            ) from exc
    return endpoints
