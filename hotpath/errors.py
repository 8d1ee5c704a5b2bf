"""The one exception root of hotpath.

Every error raised on purpose by hotpath code derives from :class:`HotpathError`; third-party
exceptions are mapped at the adapter edge with ``raise Ours(...) from exc``.

    HotpathError
    ├── ConfigError          bad or inconsistent settings
    ├── BadInput             a caller sent something we refuse (maps to HTTP 422 / an error event)
    ├── NotFound             a key, model or file that does not exist
    ├── ServiceError         a local server could not be installed, started, reached or stopped
    │   └── ServiceUnavailable   a store or stream backend is down or timed out at run time
    ├── StoreError           a storage adapter failed (wraps the client's exception)
    ├── StreamError          an event-log / stream adapter failed
    └── ModelError           a model could not be loaded or run
"""

from __future__ import annotations

__all__ = [
    "HotpathError",
    "ConfigError",
    "BadInput",
    "NotFound",
    "ServiceError",
    "ServiceUnavailable",
    "StoreError",
    "StreamError",
    "ModelError",
]


class HotpathError(Exception):
    """Root of every error hotpath raises on purpose.

    ``hint`` says what to do about it; the CLI prints ``message`` and ``hint`` on one line, never a
    stack trace.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(HotpathError):
    """Settings that cannot be used as given."""


class BadInput(HotpathError):
    """Input refused; ``field`` names the offending parameter when there is one."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class NotFound(HotpathError):
    """Something looked up by name or key does not exist."""


class ServiceError(HotpathError):
    """A local server (Redis, Mosquitto, Kafka, Cassandra, Ray) failed to install, start or stop."""


class ServiceUnavailable(ServiceError):
    """A backend is unreachable or timed out while serving."""


class StoreError(HotpathError):
    """A storage adapter operation failed."""


class StreamError(HotpathError):
    """An event-log or stream adapter operation failed."""


class ModelError(HotpathError):
    """A model could not be loaded or run."""
