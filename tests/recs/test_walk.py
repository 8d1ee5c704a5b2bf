"""``hotpath bench walk``: the files one request / one audio chunk executes, traced over real servers."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.services]


def test_a_related_request_walks_few_files(settings) -> None:
    from bench.walk import walk_recs

    res = walk_recs(settings, masters=2000, say=lambda m: None)
    steady, new = res["steady"], res["new_master"]
    for w in (steady, new):
        assert "hotpath/deployments/recs.py" in w["by_file"] and "hotpath/recs/service.py" in w["by_file"], w
        assert all(f.startswith("hotpath/") and f.endswith(".py") for f in w["by_file"])
        assert w["files"] == len(w["by_file"]) <= 7, w  # docs/architecture.md quotes the figure
    # a master not served yet reads its semantic list from Redis: more work, the same files
    assert new["calls"] > steady["calls"] and "hotpath/stores/redis_fast.py" in new["by_file"]


def test_an_audio_chunk_walks_the_session_host(settings) -> None:
    from bench.walk import walk_voice_chunk

    w = walk_voice_chunk(settings, say=lambda m: None)["chunk"]
    for f in ("hotpath/voice/ingress.py", "hotpath/actors/voice_host.py", "hotpath/voice/device.py", "hotpath/voice/vad.py"):
        assert f in w["by_file"], w
    assert w["files"] == len(w["by_file"]) <= 5, w  # docs/architecture.md quotes the figure
