"""A synthetic catalog with structure planted on purpose, generated with numpy at any scale.

Shape (defaults in :class:`~hotpath.recs.settings.CatalogSettings`):

* a category tree ``department > subcategory > leaf`` (ids ``dDD.sSS.lLL``), a few thousand leaves
  at the design's scale; leaf popularity is Zipf-like;
* masters sorted by leaf, so a leaf is a contiguous index range; a master's position in its leaf is
  its popularity rank (sales fall off Zipf-like, strictly decreasing inside a leaf);
* 1-20 seller pids per master (skewed to few) with prices around the leaf's price level, ratings,
  a few missing attributes, promos (boosts, ad bids, flash sales) and out-of-stock pids;
* titles from the category's vocabulary, so text similarity means something.

Planted structure (what tests check comes back):

* **semantic groups**: masters at positions ``5g..5g+4`` of a leaf are strongly related to each
  other (similarity ~0.9), weakly to random masters of their leaf (0.15-0.4) and of the leaf's
  partner (0.15-0.3);
* **partner categories**: every leaf's strongest co-viewed category is :meth:`Catalog.partner`
  (same sub/leaf numbers in the next department), then its siblings;
* **users**: user ``u{n}`` has an interest leaf; their recent views are members of one semantic
  group of it (the *anchor group*) plus other masters of the leaf; their recent categories start
  with the interest leaf.

Scores are multiples of 1/1024, exact in float32, so every store (Cassandra keeps ``float``) gives
back the very numbers generated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotpath.recs.settings import CatalogSettings

__all__ = ["Catalog", "generate", "master_uuid", "pid_uuid", "GROUP"]

GROUP = 5
_SCALE = 1024.0
_WORDS = (
    "audio video phone laptop camera lens garden kitchen coffee tea tool drill paint bike tent "
    "shoe boot jacket shirt dress watch ring lamp chair table sofa bed pillow towel soap brush "
    "toy puzzle game book pen paper bag case cable charger mouse keyboard monitor printer router "
    "speaker light fan heater filter bottle cup plate knife pan pot grill bowl vase frame clock"
).split()
_ADJ = "classic pro mini max ultra eco smart compact deluxe basic premium sport travel home".split()


def master_uuid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012x}"


def pid_uuid(j: int) -> str:
    return f"00000000-0000-4000-9000-{j:012x}"


def _q(x: np.ndarray) -> np.ndarray:
    """Quantise integer numerators to k/1024 floats."""
    return x.astype(np.float64) / _SCALE


@dataclass
class Catalog:
    """The generated data, columnar. Indices are positions in these arrays."""

    settings: CatalogSettings
    generated_at: float
    """Epoch seconds the timestamps are relative to."""
    cat_ids: list[str]
    leaf_start: np.ndarray  # int64 [L+1]: masters of leaf c are leaf_start[c]:leaf_start[c+1]
    master_leaf: np.ndarray  # int32 [M]
    master_rank: np.ndarray  # int32 [M] position in its leaf (0 = best seller)
    sales: np.ndarray  # int64 [M]
    inference_ts: np.ndarray  # int64 [M] epoch seconds
    pid_start: np.ndarray  # int64 [M+1]
    pid_price: np.ndarray  # float64 [P], nan = missing
    pid_rating: np.ndarray  # float64 [P], nan = missing
    pid_boost: np.ndarray  # float64 [P]
    pid_oos: np.ndarray  # bool [P]
    pid_ad_bid: np.ndarray  # float64 [P]
    pid_flash: np.ndarray  # bool [P]
    sem_src: np.ndarray  # int32 [R] sorted by src
    sem_dst: np.ndarray  # int32 [R]
    sem_score: np.ndarray  # float64 [R]
    cov_src: np.ndarray  # int32 leaf
    cov_dst: np.ndarray  # int32 leaf
    cov_score: np.ndarray  # float64
    user_views: list[list[tuple[int, float]]]  # per user: (master index, view time)
    user_cats: list[list[tuple[int, float]]]  # per user: (leaf index, interest)
    user_anchor: np.ndarray  # int32 [U] first master of the user's anchor group

    # ------------------------------------------------------------------ shape
    @property
    def n_masters(self) -> int:
        return len(self.master_leaf)

    @property
    def n_pids(self) -> int:
        return len(self.pid_price)

    @property
    def n_leaves(self) -> int:
        return len(self.cat_ids)

    def partner(self, leaf: int) -> int:
        s = self.settings
        per_dept = s.subcats_per_department * s.leaves_per_subcat
        d, rest = divmod(leaf, per_dept)
        return ((d + 1) % s.departments) * per_dept + rest if s.departments > 1 else leaf

    def group_of(self, i: int) -> list[int]:
        """The planted semantic group of master ``i`` (itself included)."""
        leaf = int(self.master_leaf[i])
        start, end = int(self.leaf_start[leaf]), int(self.leaf_start[leaf + 1])
        g0 = start + (int(self.master_rank[i]) // GROUP) * GROUP
        return list(range(g0, min(g0 + GROUP, end)))

    def pids_of(self, i: int) -> range:
        return range(int(self.pid_start[i]), int(self.pid_start[i + 1]))

    def title(self, i: int) -> str:
        leaf = int(self.master_leaf[i])
        d, s, l = (int(x[1:]) for x in self.cat_ids[leaf].split("."))
        w = _WORDS
        return f"{_ADJ[i % len(_ADJ)]} {w[(d * 7 + l) % len(w)]} {w[(d * 3 + s) % len(w)]} {i % 97}"

    def semantic_of(self, i: int) -> list[tuple[int, float]]:
        lo, hi = np.searchsorted(self.sem_src, [i, i + 1])
        return list(zip(self.sem_dst[lo:hi].tolist(), self.sem_score[lo:hi].tolist()))

    def coview_of(self, leaf: int) -> list[tuple[int, float]]:
        lo, hi = np.searchsorted(self.cov_src, [leaf, leaf + 1])
        return list(zip(self.cov_dst[lo:hi].tolist(), self.cov_score[lo:hi].tolist()))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "catalog.npz"
        uv_len = np.array([len(v) for v in self.user_views], dtype=np.int32)
        uc_len = np.array([len(v) for v in self.user_cats], dtype=np.int32)
        flat = lambda rows, j: np.array([x[j] for r in rows for x in r])  # noqa: E731
        np.savez(
            path,
            settings=np.array(self.settings.model_dump_json()),
            generated_at=np.array(self.generated_at),
            cat_ids=np.array(self.cat_ids),
            **{
                k: getattr(self, k)
                for k in (
                    "leaf_start master_leaf master_rank sales inference_ts pid_start pid_price pid_rating "
                    "pid_boost pid_oos pid_ad_bid pid_flash sem_src sem_dst sem_score cov_src cov_dst "
                    "cov_score user_anchor"
                ).split()
            },
            uv_len=uv_len,
            uv_m=flat(self.user_views, 0).astype(np.int64),
            uv_t=flat(self.user_views, 1).astype(np.float64),
            uc_len=uc_len,
            uc_c=flat(self.user_cats, 0).astype(np.int64),
            uc_s=flat(self.user_cats, 1).astype(np.float64),
        )
        return path

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        if path.is_dir():
            path = path / "catalog.npz"
        z = np.load(path, allow_pickle=False)

        def split(lens, *cols):
            out, at = [], 0
            for n in lens.tolist():
                out.append(list(zip(*(c[at : at + n].tolist() for c in cols))))
                at += n
            return out

        fields = {
            k: z[k]
            for k in (
                "leaf_start master_leaf master_rank sales inference_ts pid_start pid_price pid_rating "
                "pid_boost pid_oos pid_ad_bid pid_flash sem_src sem_dst sem_score cov_src cov_dst "
                "cov_score user_anchor"
            ).split()
        }
        return cls(
            settings=CatalogSettings.model_validate_json(str(z["settings"])),
            generated_at=float(z["generated_at"]),
            cat_ids=[str(c) for c in z["cat_ids"].tolist()],
            user_views=split(z["uv_len"], z["uv_m"], z["uv_t"]),
            user_cats=split(z["uc_len"], z["uc_c"], z["uc_s"]),
            **fields,
        )


def _dedupe_top(src: np.ndarray, dst: np.ndarray, num: np.ndarray, keep: int | None) -> tuple:
    """Per src: unique dst keeping the highest score; optionally the ``keep`` best (score desc, dst asc)."""
    ok = src != dst
    src, dst, num = src[ok], dst[ok], num[ok]
    order = np.lexsort((-num, dst, src))  # by src, dst, then score desc
    src, dst, num = src[order], dst[order], num[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, num = src[first], dst[first], num[first]
    if keep is not None:
        order = np.lexsort((dst, -num, src))
        src, dst, num = src[order], dst[order], num[order]
        starts = np.r_[0, np.flatnonzero(src[1:] != src[:-1]) + 1]
        pos = np.arange(len(src)) - np.repeat(starts, np.diff(np.r_[starts, len(src)]))
        sel = pos < keep
        src, dst, num = src[sel], dst[sel], num[sel]
    return src.astype(np.int32), dst.astype(np.int32), _q(num)


def generate(settings: CatalogSettings, *, now: float | None = None, users: int | None = None) -> Catalog:
    """Generate a catalog; the same settings and ``now`` give the same catalog."""
    s = settings
    now = float(int(now if now is not None else time.time()))
    rng = np.random.default_rng(s.seed)
    D, S, LL = s.departments, s.subcats_per_department, s.leaves_per_subcat
    L = D * S * LL
    cat_ids = [f"d{d:02d}.s{x:02d}.l{l:02d}" for d in range(D) for x in range(S) for l in range(LL)]
    M = s.masters

    # leaves: Zipf-like popularity, at least one master each when there are enough masters
    leaf_w = 1.0 / np.arange(1, L + 1) ** 0.6
    leaf_w = leaf_w[rng.permutation(L)]
    leaf_w /= leaf_w.sum()
    base = 1 if M >= L else 0
    sizes = base + rng.multinomial(M - base * L, leaf_w)
    leaf_start = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    master_leaf = np.repeat(np.arange(L, dtype=np.int32), sizes)
    master_rank = (np.arange(M) - leaf_start[master_leaf]).astype(np.int32)
    size_of = sizes[master_leaf]

    amp = 200.0 + 20000.0 * leaf_w[master_leaf] * L / 10.0
    sales = (np.floor(amp / (master_rank + 1.0) ** 1.1) + (size_of - master_rank)).astype(np.int64)

    age_days = rng.uniform(0, 20, M)
    stale = rng.random(M) < s.stale_fraction
    age_days[stale] = rng.uniform(100, 400, stale.sum())
    inference_ts = (now - age_days * 86400).astype(np.int64)

    # pids: 1..max, skewed to few
    npids = np.minimum(1 + rng.geometric(0.2, M) - 1, s.max_pids_per_master).astype(np.int64)
    npids = np.maximum(npids, 1)
    pid_start = np.r_[0, np.cumsum(npids)].astype(np.int64)
    P = int(pid_start[-1])
    pid_master = np.repeat(np.arange(M), npids)
    leaf_price = np.exp(rng.normal(3.5, 1.0, L))
    price = np.round(leaf_price[master_leaf[pid_master]] * rng.uniform(0.7, 1.4, P), 2)
    rating = rng.integers(10, 51, P) / 10.0
    price[rng.random(P) < 0.005] = np.nan
    rating[rng.random(P) < 0.005] = np.nan
    boost = np.ones(P)
    b = rng.random(P) < 0.05
    boost[b] = rng.integers(1100, 2001, b.sum()) / 1000.0
    oos = rng.random(P) < 0.03
    ad_bid = np.zeros(P)
    a = rng.random(P) < 0.03
    ad_bid[a] = rng.integers(1, 51, a.sum()) / 100.0
    flash = rng.random(P) < 0.01

    # semantic relations: group members, same leaf randoms, partner leaf randoms
    idx = np.arange(M)
    g0 = idx - (master_rank % GROUP)
    srcs, dsts, nums = [], [], []
    for off in range(GROUP):
        d = g0 + off
        ok = (d < leaf_start[master_leaf + 1]) & (d != idx)
        srcs.append(idx[ok])
        dsts.append(d[ok])
        nums.append(1000 - 16 * np.abs(d[ok] - idx[ok]) - (idx[ok] % 7))
    for _ in range(8):
        d = leaf_start[master_leaf] + (rng.random(M) * size_of).astype(np.int64)
        srcs.append(idx)
        dsts.append(d)
        nums.append(rng.integers(150, 420, M))
    per_dept = S * LL
    partner_leaf = ((master_leaf // per_dept + 1) % D) * per_dept + master_leaf % per_dept if D > 1 else master_leaf
    for _ in range(2):
        lo, hi = leaf_start[partner_leaf], leaf_start[partner_leaf + 1]
        d = lo + (rng.random(M) * np.maximum(hi - lo, 1)).astype(np.int64)
        ok = hi > lo
        srcs.append(idx[ok])
        dsts.append(d[ok])
        nums.append(rng.integers(150, 300, ok.sum()))
    sem_src, sem_dst, sem_score = _dedupe_top(np.concatenate(srcs), np.concatenate(dsts), np.concatenate(nums), None)

    # category co-views: partner strongest, then siblings, then a few randoms; top-20
    leaves = np.arange(L)
    cs, cd, cn = [leaves], [((leaves // per_dept + 1) % D) * per_dept + leaves % per_dept], [np.full(L, 1024)]
    sub0 = leaves - leaves % LL
    for off in range(LL):
        cs.append(leaves)
        cd.append(sub0 + off)
        cn.append(rng.integers(200, 700, L))
    for _ in range(5):
        cs.append(leaves)
        cd.append(rng.integers(0, L, L))
        cn.append(rng.integers(50, 200, L))
    cov_src, cov_dst, cov_score = _dedupe_top(np.concatenate(cs), np.concatenate(cd), np.concatenate(cn), 20)

    # users
    U = users if users is not None else s.users
    user_leaf = rng.choice(L, U, p=sizes / sizes.sum())
    user_views: list[list[tuple[int, float]]] = []
    user_cats: list[list[tuple[int, float]]] = []
    anchors = np.zeros(U, dtype=np.int32)
    for u in range(U):
        leaf = int(user_leaf[u])
        lo, hi = int(leaf_start[leaf]), int(leaf_start[leaf + 1])
        n = hi - lo
        g = int(rng.integers(0, max(1, (n + GROUP - 1) // GROUP)))
        a0 = lo + g * GROUP
        anchors[u] = a0
        group = list(range(a0, min(a0 + GROUP, hi)))
        views = group[: max(1, min(len(group) - 1, 2))]
        others = [lo + int(x) for x in rng.integers(0, n, 3)]
        seen: list[int] = []
        for m in views + others:
            if m not in seen and m not in group[len(views):]:
                seen.append(m)
        t0 = now - float(rng.integers(60, 3600))
        user_views.append([(m, t0 - 120.0 * j) for j, m in enumerate(seen)])
        cats = [(leaf, 1.0)]
        other = int(rng.integers(0, L))
        if other != leaf:
            cats.append((other, 0.25))
        user_cats.append(cats)

    return Catalog(
        settings=s,
        generated_at=now,
        cat_ids=cat_ids,
        leaf_start=leaf_start,
        master_leaf=master_leaf,
        master_rank=master_rank,
        sales=sales,
        inference_ts=inference_ts,
        pid_start=pid_start,
        pid_price=price,
        pid_rating=rating,
        pid_boost=boost,
        pid_oos=oos,
        pid_ad_bid=ad_bid,
        pid_flash=flash,
        sem_src=sem_src,
        sem_dst=sem_dst,
        sem_score=sem_score,
        cov_src=cov_src,
        cov_dst=cov_dst,
        cov_score=cov_score,
        user_views=user_views,
        user_cats=user_cats,
        user_anchor=anchors,
    )
