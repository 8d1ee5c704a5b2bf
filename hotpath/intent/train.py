"""Train BERT-Tiny on labelled utterances (JAX + optax AdamW), optionally distilling MiniLM.

Needs the ``train`` extra (jax, optax). The optimiser: global-norm clipping to 1, AdamW (weight decay
on the matrices only), the token embeddings' updates scaled by ``embedding_lr_scale``, a linear warm-up
to ``lr`` then a linear decay to 0. The loss is cross-entropy on the intent plus, when the MiniLM
teacher is installed, ``distill_weight * (1 - cos)`` between an auxiliary projection of the
student's pooled vector and the teacher's sentence embedding, and ``soft_weight`` times the
cross-entropy to a teacher head's soft labels, on the training lines and on ``augment`` noisy
copies of each (paraphrase noise, :mod:`hotpath.intent.augment`); the student's token and position
embeddings then start from a PCA of the teacher's. :func:`hotpath.intent.artifact.train_and_export`
wraps this with export, quantisation and calibration.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from hotpath.errors import BadInput, ModelError
from hotpath.intent.bert import BertConfig, forward, init_params
from hotpath.intent.data import Example, label_order
from hotpath.intent.tokenizer import IntentTokenizer

__all__ = ["TrainConfig", "TrainedModel", "train_model", "predict_logits"]


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = 128
    layers: int = 2
    heads: int = 2
    intermediate: int = 512
    max_length: int = 32
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    embedding_lr_scale: float = 0.1
    """Learning-rate factor of the token-embedding table (small keeps unseen words near the teacher's)."""
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    dropout: float = 0.1
    distill_weight: float = 1.0
    augment: int = 1
    """Paraphrase-noise copies per training line (:mod:`hotpath.intent.augment`), embedded and
    soft-labelled by the teacher; needs the teacher (ignored without it)."""
    augment_random: float = 0.0
    """Per-word probability that paraphrase noise puts a random common vocabulary word in its place."""
    soft_weight: float = 1.0
    """Weight of the cross-entropy to the teacher head's soft intent probabilities (needs the teacher)."""
    head_l2: float = 1e-3
    """L2 penalty of the teacher's linear head (fitted on the teacher's embeddings of the training lines)."""
    label_smoothing: float = 0.0
    teacher: str = "auto"
    """"auto" (use MiniLM when installed), "yes" (required) or "no"."""
    max_steps: int | None = None
    """Stop after this many steps (tiny CI runs)."""
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainedModel:
    params: dict[str, np.ndarray]
    bert: BertConfig
    labels: list[str]
    teacher_used: bool
    history: list[dict[str, float]] = field(default_factory=list)


def _jax():
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise ModelError("training needs jax", hint="pip install -e '.[train]'") from exc
    return jax, jnp


def _optax():
    try:
        import optax
    except ImportError as exc:
        raise ModelError("training needs optax", hint="pip install -e '.[train]'") from exc
    return optax


def _optimizer(cfg: TrainConfig, params: dict, total: int, warmup: int):
    """Clip to global norm 1, AdamW, embedding updates scaled, warm-up then linear decay."""
    optax = _optax()
    schedule = optax.join_schedules(
        [optax.linear_schedule(cfg.lr / warmup, cfg.lr, warmup - 1),  # (t + 1) / warmup of lr
         optax.linear_schedule(cfg.lr, 0.0, max(1, total - warmup))],
        boundaries=[warmup],
    )
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=cfg.weight_decay,
                    mask={k: v.ndim == 2 for k, v in params.items()}),
        optax.masked(optax.scale(cfg.embedding_lr_scale), {k: k == "word_emb" for k in params}),
    )


def _labels_of(examples: list[Example]) -> list[str]:
    labels = label_order(examples)
    if len(labels) < 2:
        raise BadInput("training data needs at least two different intents", field="data")
    return labels


def train_model(
    train: list[Example],
    val: list[Example],
    tokenizer: IntentTokenizer,
    cfg: TrainConfig = TrainConfig(),
    log: Callable[[str], None] = print,
) -> TrainedModel:
    jax, jnp = _jax()
    labels = _labels_of(train)
    index = {name: i for i, name in enumerate(labels)}
    if cfg.max_length > tokenizer.max_length:
        raise BadInput(f"max_length {cfg.max_length} exceeds the tokenizer's {tokenizer.max_length}")
    ids, mask = tokenizer.encode_batch([e.text for e in train], pad_to=cfg.max_length)
    y = np.array([index[e.label] for e in train], np.int32)
    val = [e for e in val if e.label in index]
    vids, vmask = tokenizer.encode_batch([e.text for e in val], pad_to=cfg.max_length) if val else (None, None)
    vy = np.array([index[e.label] for e in val], np.int32)

    teacher = None
    if cfg.teacher != "no":
        from hotpath.intent.teacher import MiniLM, teacher_dir

        if teacher_dir() is not None:
            teacher = MiniLM()
        elif cfg.teacher == "yes":
            teacher = MiniLM()  # raises the clear "not installed" error
    bert = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads,
        intermediate=cfg.intermediate, max_length=cfg.max_length, n_labels=len(labels),
        distill_dim=384 if teacher is not None else 0,
    )
    params = init_params(bert, cfg.seed)
    targets = np.zeros((len(train), max(bert.distill_dim, 1)), np.float32)
    soft = np.zeros((len(train), 1), np.float32)
    soft_weight = 0.0
    if teacher is not None:
        t0 = time.perf_counter()
        if teacher.word_embeddings.shape[0] != tokenizer.vocab_size:
            raise ModelError("the teacher's vocabulary differs from the tokenizer's")
        params.update(teacher.student_embeddings(cfg.hidden, cfg.max_length))
        if cfg.augment > 0:
            from hotpath.intent.augment import common_words, neighbour_table, paraphrase_noise

            texts = [e.text for e in train]
            vocab = teacher.vocab_path.read_text(encoding="utf-8").splitlines()
            words = {w for t in texts for w in t.lower().split()}
            near = neighbour_table(vocab, teacher.word_embeddings, words)
            noisy = paraphrase_noise(texts, near, cfg.augment, seed=cfg.seed, p_random=cfg.augment_random,
                                     random_words=common_words(vocab))
            nids, nmask = tokenizer.encode_batch(noisy, pad_to=cfg.max_length)
            ids, mask = np.concatenate([ids, nids]), np.concatenate([mask, nmask])
            y = np.concatenate([y, np.full(len(noisy), -1, np.int32)])  # no label of their own
            log(f"paraphrase noise: {len(noisy)} variants ({cfg.augment} per line, "
                f"neighbours for {len(near)} of {len(words)} words)")
        targets = teacher.embed(ids, mask, log=log)
        log(f"teacher: MiniLM embeddings of {len(ids)} utterances in {time.perf_counter() - t0:.1f}s")
        if cfg.soft_weight > 0:
            from hotpath.intent.augment import fit_head, head_probs

            t0 = time.perf_counter()
            labelled = y >= 0
            head = fit_head(targets[labelled], y[labelled], len(labels), l2=cfg.head_l2)
            soft = head_probs(head, targets)
            soft_weight = cfg.soft_weight
            log(f"teacher head: fitted on {int(labelled.sum())} lines in {time.perf_counter() - t0:.1f}s "
                f"(training accuracy {float((soft[labelled].argmax(1) == y[labelled]).mean()):.4f})")
    else:
        log("teacher: none (random embedding init, no distillation)")

    n_rows = len(ids)
    batch = max(1, min(cfg.batch_size, n_rows))
    steps_per_epoch = max(1, n_rows // batch)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = max(1, int(total * cfg.warmup_fraction))
    optimizer = _optimizer(cfg, params, total, warmup)
    optax = _optax()
    distill_weight = cfg.distill_weight if teacher is not None else 0.0

    smooth = cfg.label_smoothing

    def loss_fn(p, xb, mb, yb, tb, qb, key):
        logits, _, dist = forward(p, xb, mb, bert, dropout=cfg.dropout, rng=key)
        logp = jax.nn.log_softmax(logits)
        hard = (yb >= 0).astype(jnp.float32)
        row = -jnp.take_along_axis(logp, jnp.maximum(yb, 0)[:, None], axis=1)[:, 0]
        if smooth:
            row = (1.0 - smooth) * row - smooth * jnp.mean(logp, axis=1)
        ce = jnp.sum(row * hard) / jnp.maximum(jnp.sum(hard), 1.0)
        loss = ce
        if soft_weight:
            loss = loss + soft_weight * jnp.mean(-jnp.sum(qb * logp, axis=1))
        if dist is not None:
            cos = jnp.sum(dist * tb, axis=1) / (jnp.linalg.norm(dist, axis=1) + 1e-6)
            loss = loss + distill_weight * jnp.mean(1.0 - cos)
        return loss, ce

    @jax.jit
    def step(p, opt_state, xb, mb, yb, tb, qb, key):
        (loss, ce), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, xb, mb, yb, tb, qb, key)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss, ce

    @jax.jit
    def eval_logits(p, xb, mb):
        return forward(p, xb, mb, bert)[0]

    p = {k: jnp.asarray(v) for k, v in params.items()}
    opt_state = optimizer.init(p)
    rng = np.random.default_rng(cfg.seed)
    key = jax.random.PRNGKey(cfg.seed)
    history: list[dict[str, float]] = []
    t = 0
    epochs = math.ceil(total / steps_per_epoch)
    log(f"training {bert.layers}x{bert.hidden} on {n_rows} utterances, {len(labels)} intents, "
        f"{epochs} epochs, {total} steps")
    quarter = steps_per_epoch // 4 if steps_per_epoch >= 200 else 0  # progress inside long epochs
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n_rows)
        losses, ces = [], []
        for s in range(steps_per_epoch):
            if t >= total:
                break
            sel = order[s * batch:(s + 1) * batch]
            key, sub = jax.random.split(key)
            p, opt_state, loss, ce = step(p, opt_state, ids[sel], mask[sel], y[sel], targets[sel],
                                          soft[sel], sub)
            losses.append(float(loss))
            ces.append(float(ce))
            t += 1
            if quarter and (s + 1) % quarter == 0 and s + 1 < steps_per_epoch and t < total:
                log(f"  epoch {epoch}: step {s + 1}/{steps_per_epoch} loss {np.mean(losses):.4f} "
                    f"({time.perf_counter() - t0:.0f}s)")
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "ce": float(np.mean(ces)),
               "seconds": time.perf_counter() - t0}
        if vids is not None and len(vids):
            vl = np.concatenate([np.asarray(eval_logits(p, vids[i:i + 256], vmask[i:i + 256]))
                                 for i in range(0, len(vids), 256)])
            row["val_accuracy"] = float((vl.argmax(1) == vy).mean())
        history.append(row)
        extra = f" val_acc {row['val_accuracy']:.4f}" if "val_accuracy" in row else ""
        log(f"epoch {epoch}/{epochs} loss {row['loss']:.4f} ce {row['ce']:.4f}{extra} ({row['seconds']:.1f}s)")
    out = {k: np.asarray(x, np.float32) for k, x in p.items()}
    return TrainedModel(out, bert, labels, teacher is not None, history)


def predict_logits(model: TrainedModel, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The training framework's logits (the reference the ONNX export is checked against)."""
    _, jnp = _jax()
    p = {k: jnp.asarray(v) for k, v in model.params.items()}
    return np.asarray(forward(p, jnp.asarray(ids), jnp.asarray(mask), model.bert)[0])
