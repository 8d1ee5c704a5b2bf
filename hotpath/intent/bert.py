"""BERT-Tiny written out in JAX: the training-side forward pass (the ONNX export mirrors it op by op).

Geometry (defaults): 2 layers, hidden 128, 2 heads, intermediate 512, post-LayerNorm, GELU (erf),
masked mean pooling, a linear classifier. Parameters are a flat ``dict[str, array]`` with weight
matrices laid out ``[in, out]`` so that ``x @ W + b`` is the same in JAX, numpy and ONNX.

Needs the ``train`` extra (jax); importing :mod:`hotpath.intent` for serving never imports this.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BertConfig", "init_params", "forward", "param_shapes"]

MASK_NEG = -10000.0


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    intermediate: int = 512
    max_length: int = 32
    n_labels: int = 6
    distill_dim: int = 0
    """Width of the auxiliary head regressing the teacher's sentence embedding (0: none)."""
    ln_eps: float = 1e-12

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def param_shapes(cfg: BertConfig) -> dict[str, tuple[int, ...]]:
    h, i = cfg.hidden, cfg.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "word_emb": (cfg.vocab_size, h),
        "pos_emb": (cfg.max_length, h),
        "emb_ln_g": (h,),
        "emb_ln_b": (h,),
    }
    for layer in range(cfg.layers):
        p = f"l{layer}_"
        for name in ("q", "k", "v", "o"):
            shapes[p + name + "_w"] = (h, h)
            shapes[p + name + "_b"] = (h,)
        shapes[p + "ln1_g"] = (h,)
        shapes[p + "ln1_b"] = (h,)
        shapes[p + "ff1_w"] = (h, i)
        shapes[p + "ff1_b"] = (i,)
        shapes[p + "ff2_w"] = (i, h)
        shapes[p + "ff2_b"] = (h,)
        shapes[p + "ln2_g"] = (h,)
        shapes[p + "ln2_b"] = (h,)
    shapes["cls_w"] = (h, cfg.n_labels)
    shapes["cls_b"] = (cfg.n_labels,)
    if cfg.distill_dim:
        shapes["dist_w"] = (h, cfg.distill_dim)
        shapes["dist_b"] = (cfg.distill_dim,)
    return shapes


def init_params(cfg: BertConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Truncated-normal(0.02)-style init (numpy, so it needs no jax): LayerNorm 1/0, biases 0."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("_g"):
            params[name] = np.ones(shape, np.float32)
        elif len(shape) == 1:
            params[name] = np.zeros(shape, np.float32)
        else:
            params[name] = np.clip(rng.normal(0, 0.02, shape), -0.04, 0.04).astype(np.float32)
    return params


def _layer_norm(x, g, b, eps):
    import jax.numpy as jnp

    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + eps) * g + b


def _gelu(x):
    import jax

    return 0.5 * x * (1.0 + jax.lax.erf(x / math.sqrt(2.0)))


def forward(params, ids, mask, cfg: BertConfig, *, dropout: float = 0.0, rng=None):
    """(logits [B, n_labels], pooled [B, hidden], distill [B, distill_dim] or None)."""
    import jax
    import jax.numpy as jnp

    def drop(x, key):
        if dropout <= 0.0 or rng is None:
            return x
        keep = jax.random.bernoulli(key, 1.0 - dropout, x.shape)
        return jnp.where(keep, x / (1.0 - dropout), 0.0)

    keys = list(jax.random.split(rng, 1 + 2 * cfg.layers)) if rng is not None else [None] * (1 + 2 * cfg.layers)
    b, s = ids.shape
    h, nh = cfg.hidden, cfg.heads
    dh = h // nh
    maskf = mask.astype(jnp.float32)
    x = params["word_emb"][ids] + params["pos_emb"][:s][None, :, :]
    x = drop(_layer_norm(x, params["emb_ln_g"], params["emb_ln_b"], cfg.ln_eps), keys[0])
    bias = ((1.0 - maskf) * MASK_NEG)[:, None, None, :]
    scale = 1.0 / math.sqrt(dh)
    for layer in range(cfg.layers):
        p = f"l{layer}_"

        def heads(t):
            return t.reshape(b, s, nh, dh).transpose(0, 2, 1, 3)

        q = heads(x @ params[p + "q_w"] + params[p + "q_b"])
        k = heads(x @ params[p + "k_w"] + params[p + "k_b"])
        v = heads(x @ params[p + "v_w"] + params[p + "v_b"])
        att = jax.nn.softmax((q @ k.transpose(0, 1, 3, 2)) * scale + bias, axis=-1)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        a = drop(ctx @ params[p + "o_w"] + params[p + "o_b"], keys[1 + 2 * layer])
        x = _layer_norm(x + a, params[p + "ln1_g"], params[p + "ln1_b"], cfg.ln_eps)
        f = _gelu(x @ params[p + "ff1_w"] + params[p + "ff1_b"]) @ params[p + "ff2_w"] + params[p + "ff2_b"]
        x = _layer_norm(x + drop(f, keys[2 + 2 * layer]), params[p + "ln2_g"], params[p + "ln2_b"], cfg.ln_eps)
    summed = jnp.sum(x * maskf[:, :, None], axis=1)
    pooled = summed / jnp.maximum(jnp.sum(maskf, axis=1, keepdims=True), 1.0)
    logits = pooled @ params["cls_w"] + params["cls_b"]
    distill = pooled @ params["dist_w"] + params["dist_b"] if "dist_w" in params else None
    return logits, pooled, distill
