"""The served intent classifier: WordPiece tokenizer + BERT-Tiny in onnxruntime + temperature.

A model directory holds ``model.onnx``, ``vocab.txt`` and ``meta.json`` (labels in output order,
temperature, max_length, geometry, metrics). The label set is the model's own (the one of its
training data): results carry built-in :class:`Intent` members where a label is one, else a
:class:`Label`. Empty or blank text never reaches the model: it is
answered ``oos`` with confidence 1.0 and ``reason="empty transcript"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hotpath.errors import BadInput, ModelError
from hotpath.intent.calibration import softmax
from hotpath.intent.data import parse_label
from hotpath.intent.settings import IntentSettings
from hotpath.intent.slots import extract_slots
from hotpath.intent.tokenizer import IntentTokenizer
from hotpath.intent.types import Intent, IntentClassifier, IntentLabel, IntentResult, Label, Slots

__all__ = ["OnnxIntentClassifier", "ModelMeta", "load_classifier", "EMPTY_REASON"]

EMPTY_REASON = "empty transcript"
MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.txt"
META_FILE = "meta.json"


class ModelMeta:
    def __init__(self, data: dict, path: Path) -> None:
        try:
            self.labels: list[str] = list(data["labels"])
            self.temperature = float(data["temperature"])
            self.max_length = int(data["max_length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path} lacks a valid 'labels', 'temperature' or 'max_length': {exc}") from exc
        if not self.temperature > 0:
            raise ModelError(f"{path}: temperature must be positive, got {self.temperature}")
        if len(self.labels) < 2:
            raise ModelError(f"{path}: 'labels' must name at least two labels, got {self.labels}")
        intents: list[IntentLabel] = []
        for name in self.labels:
            label = parse_label(name)
            if not isinstance(label, (Intent, Label)) or label.value != name:
                raise ModelError(f"{path}: bad label {name!r} in 'labels'")
            intents.append(label)
        if len(set(self.labels)) != len(self.labels):
            raise ModelError(f"{path}: 'labels' holds a label twice")
        self.intents: list[IntentLabel] = intents
        """The labels in output order, as :class:`Intent` members where built-in, else :class:`Label`."""
        self.raw = data

    @classmethod
    def read(cls, model_dir: Path) -> ModelMeta:
        path = model_dir / META_FILE
        if not path.is_file():
            raise ModelError(f"model directory {model_dir} has no {META_FILE}", hint="train one with `hotpath intent train`")
        try:
            return cls(json.loads(path.read_text()), path)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not valid JSON: {exc}") from exc


class OnnxIntentClassifier(IntentClassifier):
    """Thread-safe for concurrent ``predict`` calls (onnxruntime sessions are)."""

    def __init__(self, model_dir: Path | str, *, threads: int = 1, model_file: str = MODEL_FILE) -> None:
        import onnxruntime as ort

        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise ModelError(f"model directory {self.model_dir} does not exist")
        self.meta = ModelMeta.read(self.model_dir)
        self.tokenizer = IntentTokenizer(self.model_dir / VOCAB_FILE, self.meta.max_length)
        onnx_path = self.model_dir / model_file
        if not onnx_path.is_file():
            raise ModelError(f"model directory {self.model_dir} has no {model_file}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"cannot load {onnx_path}: {exc}") from exc
        n_out = self._session.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(self.meta.labels):
            raise ModelError(f"{onnx_path} has {n_out} outputs but meta.json names {len(self.meta.labels)} labels")
        self.temperature = self.meta.temperature

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw (uncalibrated) logits [len(texts), n_labels]."""
        if len(texts) == 1:
            ids, mask = self.tokenizer.encode(texts[0])
        else:
            ids, mask = self.tokenizer.encode_batch(texts)
        try:
            return self._session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        except Exception as exc:
            raise ModelError(f"intent model failed: {exc}") from exc

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities [len(texts), n_labels] (temperature applied)."""
        return softmax(self.logits(texts), self.temperature)

    def predict(self, text: str) -> IntentResult:
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: list[str]) -> list[IntentResult]:
        for t in texts:
            if not isinstance(t, str):
                raise BadInput(f"transcript must be a string, got {type(t).__name__}", field="text")
        results: list[IntentResult | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        for i, t in enumerate(texts):
            if not t.strip():
                results[i] = IntentResult(t, Intent.OOS, 1.0, Slots(), {Intent.OOS.value: 1.0}, EMPTY_REASON)
        if todo:
            probs = self.probabilities([texts[i] for i in todo])
            for row, i in zip(probs, todo):
                best = int(row.argmax())
                intent = self.meta.intents[best]
                scores = {name: float(p) for name, p in zip(self.labels, row)}
                results[i] = IntentResult(texts[i], intent, float(row[best]), extract_slots(texts[i], intent), scores)
        return results  # type: ignore[return-value]


def load_classifier(settings: IntentSettings | None = None, model_dir: Path | str | None = None) -> OnnxIntentClassifier:
    """The classifier of ``model_dir``, else of the settings' model dir (default: the shipped model)."""
    settings = settings or IntentSettings()
    return OnnxIntentClassifier(model_dir or settings.resolved_model_dir(), threads=settings.intra_op_threads)
