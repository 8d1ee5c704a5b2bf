"""Server-free tests of the recommendation domain: parsing, scoring rules, catalog structure."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath.errors import BadInput
from hotpath.recs.catalog import Catalog, generate, master_uuid
from hotpath.recs.model import Candidate, PidAttrs, parse_bestsellers, parse_related
from hotpath.recs.ranking import best_pid, normalised, widget_terms
from hotpath.recs.settings import RecsSettings, WidgetRule

from .reference import Merged, gather_related, top_candidates

S = RecsSettings()
M0, M1 = master_uuid(0), master_uuid(1)


# --------------------------------------------------------------------------- bad input -> named parameter
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "abc"}, "k"),
        ({"k": "0"}, "k"),
        ({"k": "-3"}, "k"),
        ({"k": str(S.max_k + 1)}, "k"),
        ({"k": "1.5"}, "k"),
        ({"master_id": "not-a-uuid"}, "master_id"),
        ({"master_id": "1234"}, "master_id"),
        ({"user_id": "bad user!"}, "user_id"),
        ({"user_id": "x" * 65}, "user_id"),
        ({"widget": "nope"}, "widget"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_related_bad_input_names_the_parameter(params: dict, field: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_related(params, S)
    assert e.value.field == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "x"}, "k"),
        ({"k": "1000000"}, "k"),
        ({"category_id": "bad cat"}, "category_id"),
        ({"category_id": "c" * 65}, "category_id"),
        ({"user_id": "a/b"}, "user_id"),
        ({"widget": "sponsored"}, "widget"),  # best-sellers has no widget parameter
    ],
)
def test_bestsellers_bad_input_names_the_parameter(params: dict, field: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_bestsellers(params, S)
    assert e.value.field == field


def test_good_input_is_normalised() -> None:
    q = parse_related({"master_id": M1.upper(), "user_id": "u7", "k": " 5 "}, S)
    assert (q.master_id, q.user_id, q.k, q.widget) == (M1, "u7", 5, S.default_widget)
    b = parse_bestsellers({}, S)
    assert (b.category_id, b.user_id, b.k) == (None, None, S.default_k)


def test_settings_refuse_inconsistent_widgets() -> None:
    with pytest.raises(ValueError):
        RecsSettings(default_widget="missing")
    with pytest.raises(ValueError):
        RecsSettings(widgets={"pdp_related": WidgetRule()})


# --------------------------------------------------------------------------- scoring rules
def test_normalised_and_zero_lists() -> None:
    assert normalised([("a", 4.0), ("b", 2.0)]) == [("a", 1.0), ("b", 0.5)]
    assert normalised([("a", 0.0)]) == [("a", 0.0)]
    assert normalised([]) == []


def test_gather_dedupes_by_master_keeps_max_and_excludes_seeds() -> None:
    seeds = {"s1": 1.0, "s2": 0.5}
    sem = {"s1": [("m", 0.4), ("s2", 0.9)], "s2": [("m", 1.0), ("n", 0.2)]}
    bs = {"c": [("m", 10.0), ("s1", 20.0), ("o", 5.0)]}
    merged = gather_related(seeds, sem, {"c": 1.0}, {}, {}, bs, S)
    by = {c.master_id: c for c in merged.candidates()}
    assert set(by) == {"m", "n", "o"}  # seeds never come back; one entry per master
    assert by["m"].semantic == 0.5  # max(1.0*0.4, 0.5*1.0)
    assert by["m"].best_seller == 0.5  # 10/20 normalised by the list's top (a seed's score counts)
    assert by["m"].base == pytest.approx(0.6 * 0.5 + 0.4 * 0.5)
    assert by["o"].semantic == 0.0 and by["o"].best_seller == 0.25


def test_top_candidates_breaks_ties_by_master_id() -> None:
    m = Merged(["b", "a", "c", "d"], [1.0, 1.0, 2.0, 0.5], {})
    top = top_candidates(m, 2)
    assert sorted(zip(top.base, top.mids), key=lambda t: (-t[0], t[1])) == [(2.0, "c"), (1.0, "a")]


def test_best_pid_in_stock_then_rating_then_price_then_pid() -> None:
    pids = [
        PidAttrs("p1", price=10.0, rating=5.0, out_of_stock=True),
        PidAttrs("p2", price=30.0, rating=4.5),
        PidAttrs("p3", price=20.0, rating=4.5),
        PidAttrs("p0", price=20.0, rating=4.5),
        PidAttrs("p4", price=None, rating=None),
    ]
    assert best_pid(pids).pid == "p0"
    assert best_pid(pids[:1]).pid == "p1"  # only out-of-stock pids: still the best, rerank drops it
    assert best_pid([PidAttrs("x"), PidAttrs("w")]).pid == "w"  # missing attributes: never an error
    assert best_pid([]) is None


def test_widget_rules_are_data() -> None:
    a = PidAttrs("p", 10.0, 4.0, boost=1.5, ad_bid=0.4, flash_sale=True)
    def final(base, a, rule):
        mult, add, _, promo = widget_terms(a, rule)
        return base * mult + add, promo

    def keep(a, rule):
        return widget_terms(a, rule)[2]

    assert final(1.0, a, S.widgets["pdp_related"]) == (1.5, True)
    f, _ = final(1.0, a, S.widgets["sponsored"])
    assert f == pytest.approx(1.5 * 1.2 + 0.5 * 0.4)  # sponsored slots weigh bids
    f, _ = final(1.0, a, S.widgets["homepage"])
    assert f == pytest.approx(1.5 * 1.5 + 0.05)
    assert final(0.3, PidAttrs("q"), S.widgets["sponsored"]) == (0.3, False)
    assert final(0.3, None, S.widgets["sponsored"]) == (0.3, False)
    assert widget_terms(PidAttrs("p", boost=2.0), WidgetRule(boost_power=2.0))[0] == 4.0
    assert widget_terms(PidAttrs("p", boost=2.0), WidgetRule(boost_power=0.0)) == (1.0, 0.0, True, False)
    assert not keep(PidAttrs("p", out_of_stock=True), S.widgets["pdp_related"])
    assert keep(PidAttrs("p", out_of_stock=True), WidgetRule(drop_out_of_stock=False))
    assert not keep(PidAttrs("p", rating=3.0), WidgetRule(min_rating=4.0))
    assert not keep(PidAttrs("p", rating=None), WidgetRule(min_rating=4.0))
    assert keep(None, S.widgets["pdp_related"])


# --------------------------------------------------------------------------- catalog structure
@pytest.fixture(scope="module")
def small() -> Catalog:
    return generate(RecsSettings().catalog.model_copy(update={"masters": 3000, "users": 100, "departments": 3}))


def test_generation_is_deterministic_and_round_trips(small: Catalog, tmp_path) -> None:
    again = generate(small.settings, now=small.generated_at)
    assert np.array_equal(again.sem_dst, small.sem_dst) and np.array_equal(again.pid_price, small.pid_price, equal_nan=True)
    back = Catalog.load(small.save(tmp_path))
    assert back.cat_ids == small.cat_ids and back.user_views == small.user_views
    assert np.array_equal(back.cov_score, small.cov_score)


def test_catalog_shape(small: Catalog) -> None:
    counts = np.diff(small.pid_start)
    assert counts.min() >= 1 and counts.max() <= 20
    assert small.n_leaves == 3 * 8 * 12
    # scores are k/1024: exact in float32 (Cassandra's float)
    assert np.array_equal(small.sem_score.astype(np.float32).astype(np.float64), small.sem_score)
    # sales strictly decrease with the rank inside a leaf
    for leaf in range(0, small.n_leaves, 37):
        lo, hi = small.leaf_start[leaf], small.leaf_start[leaf + 1]
        assert np.all(np.diff(small.sales[lo:hi]) < 0)


def test_planted_partner_is_the_top_coview(small: Catalog) -> None:
    for leaf in range(small.n_leaves):
        top = max(small.coview_of(leaf), key=lambda t: (t[1], -t[0]))
        assert top[0] == small.partner(leaf)
        assert len(small.coview_of(leaf)) <= 20


def test_planted_groups_are_the_top_semantic_relations(small: Catalog) -> None:
    for i in range(0, small.n_masters, 97):
        group = set(small.group_of(i)) - {i}
        rel = sorted(small.semantic_of(i), key=lambda t: -t[1])
        assert {d for d, _ in rel[: len(group)]} == group
        assert all(s > 0.85 for d, s in rel if d in group)


def test_planted_user_histories(small: Catalog) -> None:
    for u in range(len(small.user_views)):
        anchor = int(small.user_anchor[u])
        group = set(small.group_of(anchor))
        viewed = [m for m, _ in small.user_views[u]]
        assert viewed[0] in group  # the most recent view is in the anchor group
        assert small.user_cats[u][0][0] == int(small.master_leaf[anchor])
        assert all(int(small.master_leaf[m]) == small.user_cats[u][0][0] for m in viewed)


def test_candidate_defaults() -> None:
    c = Candidate("m")
    assert (c.semantic, c.best_seller, c.co_view, c.user_interest, c.base) == (0, 0, 0, 0, 0)


def test_vector_merge_equals_the_scalar_merge() -> None:
    """merge_rows (numpy, what the service runs) gives the very numbers of gather_related."""
    import random

    from hotpath.recs.ranking import merge_rows, normalised

    from .reference import gather_bestsellers

    rng = random.Random(4)
    ids = [f"m{i:03d}" for i in range(200)]
    row = {m: i for i, m in enumerate(ids)}
    for _ in range(30):
        seeds = {m: rng.choice([1.0, 0.8, 0.64]) for m in rng.sample(ids, 3)}
        sem = {s: [(m, rng.randrange(1, 1024) / 1024) for m in rng.sample(ids, 12)] for s in seeds}
        cats = {f"c{j}": [(m, float(rng.randrange(1, 500))) for m in rng.sample(ids, 20)] for j in range(6)}
        own, exp, intr = {"c0": 1.0}, {"c1": 0.7 * 0.5, "c2": 0.35}, {"c3": 0.5, "c0": 0.25}
        scalar = gather_related(seeds, sem, own, intr, exp, cats, S)

        def part(lst, w, norm=True):
            pairs = normalised(lst) if norm else lst
            return (np.array([row[m] for m, _ in pairs]), np.array([v for _, v in pairs]), w)

        parts = {
            "semantic": [part(sem[s], w, False) for s, w in seeds.items()],
            "best_seller": [part(cats[c], w) for c, w in own.items()],
            "co_view": [part(cats[c], w) for c, w in exp.items()],
            "user_interest": [part(cats[c], w) for c, w in intr.items()],
        }
        vec = merge_rows(parts, np.array([row[s] for s in seeds]), "related", S)
        got = {ids[int(r)]: (float(b), *(float(vec.signals[n][i]) for n in ("semantic", "best_seller", "co_view", "user_interest")))
               for i, (r, b) in enumerate(zip(vec.rows, vec.base))}  # fmt: skip
        want = {c.master_id: (c.base, c.semantic, c.best_seller, c.co_view, c.user_interest) for c in scalar.candidates()}
        assert got == want  # exactly equal, not approximately
        weights = {"c0": (1.0, "best_seller"), "c4": (0.3, "co_view"), "c5": (0.5, "user_interest")}
        b_scalar = {c.master_id: c.base for c in gather_bestsellers(weights, cats, S).candidates()}
        b_parts: dict = {}
        for c, (w, sig) in weights.items():
            b_parts.setdefault(sig, []).append(part(cats[c], w))
        bv = merge_rows(b_parts, np.zeros(0, dtype=np.int64), "bestsellers", S)
        assert {ids[int(r)]: float(b) for r, b in zip(bv.rows, bv.base)} == b_scalar


def test_top_rows_cuts_with_ties_by_master_id() -> None:
    from hotpath.recs.ranking import RowMerged, top_rows

    ids = ["d", "c", "b", "a", "e"]
    z = np.zeros(5)
    m = RowMerged(np.arange(5), np.array([0.5, 0.9, 0.5, 0.5, 0.1]), {"semantic": z, "best_seller": z, "co_view": z, "user_interest": z})
    top = top_rows(m, 3, ids)
    assert sorted(ids[int(r)] for r in top.rows) == ["a", "b", "c"]


def test_limit_top_keeps_the_heaviest_with_ties_by_key() -> None:
    from hotpath.recs.ranking import limit_top

    w = {"d": 0.5, "b": 0.5, "a": 0.2, "c": 0.9, "e": 0.5}
    assert limit_top(w, 3) == {"c": 0.9, "b": 0.5, "d": 0.5}
    assert list(limit_top(w, 3)) == ["c", "b", "d"]
    assert limit_top(w, 10) == w


def test_expansion_of_pre_normalised_lists_is_the_same() -> None:
    from hotpath.recs.ranking import normalised, related_categories

    cov = {"a": [("x", 4.0), ("y", 2.0)], "b": [("y", 9.0), ("z", 3.0)]}
    pre = {c: normalised(lst) for c, lst in cov.items()}
    own, interest = {"a": 1.0}, {"b": 0.5}
    assert related_categories(own, interest, pre, S, normalise=False) == related_categories(own, interest, cov, S)


def test_merge_rows_drops_non_positive_and_excluded_rows() -> None:
    from hotpath.recs.ranking import merge_rows

    parts = {
        "semantic": [(np.array([5, 3, 7]), np.array([0.5, 0.0, 0.9]), 1.0)],
        "best_seller": [(np.array([7, 9, 3]), np.array([1.0, 0.5, -1.0]), 0.5)],
    }
    m = merge_rows(parts, np.array([7]), "related", S)
    assert m.rows.tolist() == [5, 9]  # 3 only ever scored <= 0; 7 is a seed
    assert m.signals["semantic"].tolist() == [0.5, 0.0]
    assert m.signals["best_seller"].tolist() == [0.0, 0.25]
    empty = merge_rows({"semantic": [(np.array([1]), np.array([0.0]), 1.0)]}, np.zeros(0, dtype=np.int64), "related", S)
    assert len(empty) == 0 and all(len(v) == 0 for v in empty.signals.values())
