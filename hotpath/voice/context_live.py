"""The tenant's context at run time: compiled once, reloaded when its file changes, swapped atomically.

:class:`LiveContext` holds the compiled :class:`~hotpath.voice.context_compile.Compiled` of the
tenant's context file (settings ``voice.context``; default ``contexts/industrial.yaml``). ``get()`` is
called once at the start of each utterance: when the file changed since the last look, the new file is
compiled *first* and only then swapped in, so an utterance always sees one whole version and an
utterance in flight keeps the one it started with. A bad new file keeps the old context and logs one
line (once per file version). A bad file at start-up raises its :class:`ContextError`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Iterable, Mapping

from hotpath.voice.context import DEFAULT_CONTEXT, ContextError
from hotpath.voice.context_compile import Compiled, compile_context

__all__ = ["LiveContext", "file_version"]

log = logging.getLogger(__name__)


def file_version(path: Path) -> tuple[float, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class LiveContext:
    def __init__(self, path: str | Path | None, values: Mapping[str, Iterable[str]] | None = None,
                 *, check_every_s: float = 0.5, clock=time.monotonic) -> None:
        self.path = Path(path) if path is not None else DEFAULT_CONTEXT
        self.values = {k: list(v) for k, v in (values or {}).items()}
        self.check_every_s = check_every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._version = file_version(self.path)
        self.current: Compiled = compile_context(self.path, per_intent=0, values=self.values)
        self._checked = clock()
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return self.current.context.context

    def get(self) -> Compiled:
        """The context to use for the next utterance (reloaded first when its file changed)."""
        now = self.clock()
        if now - self._checked < self.check_every_s:
            return self.current
        self._checked = now
        version = file_version(self.path)
        if version == self._version or version is None:
            return self.current
        with self._lock:
            if version == self._version:
                return self.current
            self._version = version  # tried once per file version: a bad file logs one line
            try:
                new = compile_context(self.path, per_intent=0, values=self.values)
            except ContextError as exc:
                self.failures += 1
                self.last_error = exc.one_line()
                log.warning("context %s not reloaded, keeping %r: %s", self.path, self.name, exc.one_line())
                return self.current
            self.current = new  # one assignment: the swap is atomic for the next utterance
            self.reloads += 1
            self.last_error = None
            log.info("context %s reloaded: %r, %d intents", self.path, new.context.context, len(new.context.intents))
        return self.current
