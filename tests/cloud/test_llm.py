"""The real LLM path: llama.cpp's OpenAI-compatible server with SmolLM2-135M, started like `hotpath up` does."""

from __future__ import annotations

import pytest

from hotpath.cloud.models import QueryRequest
from hotpath.cloud.service import CloudService
from hotpath.cloud.settings import LlmSettings
from hotpath.cluster.llama import LlamaService, smollm2_path
from hotpath.cluster.process import port_free
from hotpath.stores.vectors_file import FileVectorStore

from .conftest import DOCS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama(settings, tmp_path_factory):
    port = next(p for p in range(28081, 28181) if port_free("127.0.0.1", p))
    llm = LlmSettings(port=port, timeout_s=120.0, threads=2)
    s = settings.model_copy(update={"runtime_dir": tmp_path_factory.mktemp("llama"),
                                    "cloud": settings.cloud.model_copy(update={"llm": llm})})
    svc = LlamaService(s)
    why = svc.available()
    if why:
        pytest.skip(why)  # scripts/bootstrap.sh installs it; a checkout without the build skips
    assert smollm2_path() is not None
    svc.start()
    yield s
    svc.stop()
    assert not svc.running()


def test_grounded_llm_answer_cites_the_tenants_chunks(llama, embedder, tmp_path) -> None:
    from hotpath.clients.llm import OpenAIChat

    client = OpenAIChat(llama.cloud.llm)
    service = CloudService(llama.cloud, FileVectorStore(tmp_path), embedder, client)
    service.ingest("acme", "fire", "Fire and evacuation", (DOCS / "fire-evacuation.md").read_text())
    a = service.answer("acme", QueryRequest(tenant_id="acme", text="Where is the fire assembly point?"))
    assert a.mode == "llm", a.fallback_reason
    assert a.text and len(a.text) <= 300
    assert a.citations and all(c.tenant_id == "acme" for c in a.citations)
    assert client.last_usage["completion_tokens"] > 0
