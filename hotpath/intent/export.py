"""Write a BERT encoder as an ONNX graph, op for op (the intent BERT-Tiny, or a sentence encoder), and quantise it.

Inputs ``input_ids`` and ``attention_mask`` (int64 ``[batch, seq]``, ``seq <= max_length``);
output ``logits`` (float ``[batch, n_labels]``, before temperature). Opset 17: Gather embeddings,
LayerNormalization, MatMul/Add projections, masked softmax attention, GELU in its Erf form, masked
mean pooling, a linear classifier. Needs only numpy and onnx (no jax).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hotpath.errors import ModelError
from hotpath.intent.bert import MASK_NEG, BertConfig

__all__ = ["build_onnx", "build_bert_onnx", "save_onnx", "quantize_int8", "OPSET"]

OPSET = 17


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self._n}", **attrs))
        return out

    def linear(self, x: str, w: str, b: str) -> str:
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, g: str, b: str, eps: float) -> str:
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)


def build_onnx(params: dict[str, np.ndarray], cfg: BertConfig) -> onnx.ModelProto:
    """The inference graph for ``params`` (numpy or jax arrays, as laid out by ``bert.param_shapes``)."""
    return build_bert_onnx(params, cfg, head="classifier")


def build_bert_onnx(
    params: dict[str, np.ndarray], cfg: BertConfig, *, head: str = "classifier", name: str | None = None
) -> onnx.ModelProto:
    """A post-LN BERT encoder with masked mean pooling and one of two heads.

    ``head="classifier"``: output ``logits`` ``[batch, n_labels]`` from ``cls_w``/``cls_b`` (the
    intent model). ``head="sentence"``: output ``embeddings`` ``[batch, hidden]``, the pooled vector
    L2-normalised (sentence encoders such as all-MiniLM-L6-v2; ``cls_*`` are not needed). ``params``
    use the layout of ``bert.param_shapes`` (``[in, out]`` matrices; ``pos_emb`` may carry any
    token-type row already folded in, and as many positions as the model has).
    """
    if head not in ("classifier", "sentence"):
        raise ModelError(f"unknown BERT head {head!r} (classifier or sentence)")
    p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    g = _Graph()
    for pname, value in p.items():
        if not pname.startswith("dist_") and not (head == "sentence" and pname.startswith("cls_")):
            g.const(pname, value)
    h, nh = cfg.hidden, cfg.heads
    dh = h // nh
    one = g.const("one", np.array(1.0, np.float32))
    mask_neg = g.const("mask_neg", np.array(MASK_NEG, np.float32))
    scale = g.const("att_scale", np.array(1.0 / math.sqrt(dh), np.float32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), np.float32))
    half = g.const("half", np.array(0.5, np.float32))
    zero1 = g.const("zero1", np.array([0], np.int64))
    heads_shape = g.const("heads_shape", np.array([0, 0, nh, dh], np.int64))
    merge_shape = g.const("merge_shape", np.array([0, 0, h], np.int64))
    axes1 = g.const("axes1", np.array([1], np.int64))
    axes12 = g.const("axes12", np.array([1, 2], np.int64))
    axes2 = g.const("axes2", np.array([2], np.int64))

    seq = g.op("Shape", ["input_ids"], start=1, end=2)
    pos = g.op("Slice", ["pos_emb", zero1, seq, zero1])
    x = g.op("Add", [g.op("Gather", ["word_emb", "input_ids"], axis=0), pos])
    x = g.layer_norm(x, "emb_ln_g", "emb_ln_b", cfg.ln_eps)
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = g.op("Unsqueeze", [g.op("Mul", [g.op("Sub", [one, maskf]), mask_neg]), axes12])
    for layer in range(cfg.layers):
        pre = f"l{layer}_"
        q = g.op("Transpose", [g.op("Reshape", [g.linear(x, pre + "q_w", pre + "q_b"), heads_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [g.linear(x, pre + "k_w", pre + "k_b"), heads_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [g.linear(x, pre + "v_w", pre + "v_b"), heads_shape])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        a = g.linear(ctx, pre + "o_w", pre + "o_b")
        x = g.layer_norm(g.op("Add", [x, a]), pre + "ln1_g", pre + "ln1_b", cfg.ln_eps)
        f = g.linear(x, pre + "ff1_w", pre + "ff1_b")
        f = g.op("Mul", [g.op("Mul", [f, g.op("Add", [g.op("Erf", [g.op("Mul", [f, inv_sqrt2])]), one])]), half])
        f = g.linear(f, pre + "ff2_w", pre + "ff2_b")
        x = g.layer_norm(g.op("Add", [x, f]), pre + "ln2_g", pre + "ln2_b", cfg.ln_eps)
    summed = g.op("ReduceSum", [g.op("Mul", [x, g.op("Unsqueeze", [maskf, axes2])]), axes1], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [maskf, axes1], keepdims=1), one])
    pooled = g.op("Div", [summed, count])
    if head == "classifier":
        out_name, out_dim = "logits", cfg.n_labels
        out = g.linear(pooled, "cls_w", "cls_b")
    else:
        out_name, out_dim = "embeddings", h
        eps = g.const("l2_eps", np.array(1e-12, np.float32))
        sq = g.op("ReduceSum", [g.op("Mul", [pooled, pooled]), axes1], keepdims=1)
        out = g.op("Div", [pooled, g.op("Max", [g.op("Sqrt", [sq]), eps])])
    g.nodes.append(helper.make_node("Identity", [out], [out_name], name=out_name))

    graph = helper.make_graph(
        g.nodes,
        name or ("bert_tiny_intent" if head == "classifier" else "bert_sentence_encoder"),
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", out_dim])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hotpath")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save_onnx(model: onnx.ModelProto, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def quantize_int8(src: Path, dst: Path, scope: str = "embeddings") -> Path:
    """Dynamic int8 quantisation of weights.

    ``scope="embeddings"`` (default) quantises the token-embedding table only (about 90% of the
    weights): results stay independent of batch-mates. ``scope="all"`` also quantises the
    MatMul projections, whose activations onnxruntime then scales per *batch*, so an utterance's
    confidence moves (by up to ~0.02) with whatever it is batched with.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = {"embeddings": ["Gather"], "all": ["MatMul", "Gather"]}.get(scope)
    if ops is None:
        raise ModelError(f"unknown quantisation scope {scope!r} (embeddings or all)")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quiet its "consider pre-processing" warning (logged on the root)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops, per_channel=False)
    except Exception as exc:  # onnxruntime.quantization raises assorted exception types
        raise ModelError(f"int8 quantisation of {src} failed: {exc}") from exc
    finally:
        root.setLevel(level)
    return dst
