"""Sentence embeddings shared by the batch jobs and the cloud side (numpy + ONNX Runtime, no Ray)."""

from hotpath.embeddings.minilm import DIM, MiniLMEncoder, minilm_dir

__all__ = ["MiniLMEncoder", "minilm_dir", "DIM"]
