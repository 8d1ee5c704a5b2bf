"""Experiments config: validation, sticky salted bucketing, layers, holdouts, segments, start/stop,
hot reload by mtime."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import yaml
from scipy import stats

from hotpath.ab.experiments import Experiments, bucket, parse_experiments, variant_settings
from hotpath.errors import ConfigError


def two(name="e1", **kw) -> dict:
    return {"name": name, "variants": [{"name": "control"}, {"name": "treatment", "overrides": {"recent_view_decay": 0.5}}], **kw}


def exps(recs_settings, *experiments, **kw) -> Experiments:
    return Experiments(recs_settings, parsed=parse_experiments({"experiments": list(experiments)}, recs_settings), **kw)


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"experiments": [two(), two()]}, "unique"),
        ({"experiments": [{"name": "x", "variants": [{"name": "a", "overrides": {"max_k": 5}}, {"name": "b"}]}]}, "cannot override max_k"),
        ({"experiments": [{"name": "x", "variants": [{"name": "a", "overrides": {"recent_view_decay": 3}}, {"name": "b"}]}]}, "recent_view_decay"),
        ({"experiments": [{"name": "x", "variants": [{"name": "a"}]}]}, "variants"),
        ({"experiments": [two("a", traffic=0.7), two("b", traffic=0.5)]}, "more than 1"),
        ({"experiments": [two("a", layer="l1"), two("b", layer="l2")]}, "both set recent_view_decay"),
        ({"experiments": [two(widgets=["nope"])]}, "unknown widgets nope"),
        ({"experiments": [{"name": "x", "variants": [{"name": "a", "overrides": {"widgets": {"homepage": {"boost_power": 9}}}}, {"name": "b"}]}]}, "boost_power"),
        ({"experiments": [{"name": "x", "variants": [{"name": "holdout"}, {"name": "b"}]}]}, "reserved"),
        ({"experiments": [two(start="2026-12-02T00:00:00Z", stop="2026-12-01T00:00:00Z")]}, "stop must be after start"),
    ],
)
def test_bad_configs_are_refused_with_the_problem_named(recs_settings, doc, words) -> None:
    with pytest.raises(ConfigError) as err:
        parse_experiments(doc, recs_settings)
    assert words in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_bucketing_is_deterministic_uniform_and_reshuffled_by_the_salt() -> None:
    a = [bucket("s1", f"u{i}") for i in range(20000)]
    assert a == [bucket("s1", f"u{i}") for i in range(20000)]
    assert all(0.0 <= x < 1.0 for x in a)
    assert stats.kstest(a, "uniform").pvalue > 0.001
    b = [bucket("s2", f"u{i}") for i in range(20000)]
    same_half = sum((x < 0.5) == (y < 0.5) for x, y in zip(a, b)) / len(a)
    assert 0.48 < same_half < 0.52  # a new salt is a new, independent split


def test_split_matches_weights_and_assignment_is_sticky(recs_settings) -> None:
    doc = {"name": "w", "variants": [{"name": "control", "weight": 70}, {"name": "b", "weight": 30}], "holdout": 0.1}
    e1, e2 = exps(recs_settings, doc), exps(recs_settings, doc)
    users = [f"user-{i}" for i in range(30000)]
    got = [e1.assign(u, "pdp_related").variant for u in users]
    assert got == [e2.assign(u, "pdp_related").variant for u in users]  # another replica agrees
    c = Counter(got)
    exp = e1.config.experiments[0].expected_shares()
    assert set(c) == {"control", "b", "holdout"}
    assert stats.chisquare([c[k] for k in exp], [exp[k] * len(users) for k in exp]).pvalue > 0.001
    assert e1.assign(None, "pdp_related").arms == ()  # anonymous requests take part in nothing


def test_layers_are_independent_and_a_layer_is_exclusive(recs_settings) -> None:
    e = exps(
        recs_settings,
        two("a1", layer="L1", traffic=0.5),
        {"name": "a2", "layer": "L1", "traffic": 0.5, "variants": [{"name": "x"}, {"name": "y"}]},
        {"name": "b1", "layer": "L2", "variants": [{"name": "p"}, {"name": "q", "overrides": {"coview": False}}]},
    )
    table = Counter()
    for i in range(20000):
        a = e.assign(f"u{i}", "homepage")
        by = {arm.layer: arm for arm in a.arms}
        assert len(a.arms) == 2 and set(by) == {"L1", "L2"}  # exactly one experiment per layer
        table[(by["L1"].experiment + by["L1"].variant, by["L2"].variant)] += 1
    rows = sorted({k[0] for k in table})
    cont = [[table[(r, c)] for c in ("p", "q")] for r in rows]
    assert len(rows) == 4
    assert stats.chi2_contingency(cont).pvalue > 0.001  # L2's split does not depend on L1's
    q = next(e.assign(f"u{i}", "homepage") for i in range(100) if e.assign(f"u{i}", "homepage").arms[1].variant == "q")
    assert q.settings.expanded_cats_max == 0  # coview: false


def test_segments_widgets_and_start_stop(recs_settings) -> None:
    now = [1_764_547_200.0]  # 2025-12-01
    e = exps(
        recs_settings,
        two("new-only", layer="a", segments=["new"], widgets=["homepage"], start="2025-12-02T00:00:00Z", stop="2025-12-03T00:00:00Z"),
        clock=lambda: now[0],
    )
    assert e.assign("u1", "homepage").arms == ()  # not started
    now[0] += 86400 * 1.5
    assert e.assign("u1", "homepage").experiment == "new-only"
    assert e.assign("u1", "homepage", returning=True).arms == ()
    assert e.assign("u1", "pdp_related").arms == ()
    now[0] += 86400
    assert e.assign("u1", "homepage").arms == ()  # stopped


def test_variant_settings_keep_untouched_widget_rules(recs_settings) -> None:
    v = variant_settings(recs_settings, {"semantic_weight": 0.9, "widgets": {"homepage": {"flash_sale_mult": 3.0}}})
    assert v.semantic_weight == 0.9 and v.widgets["homepage"].flash_sale_mult == 3.0
    assert v.widgets["homepage"].flash_sale_add == recs_settings.widgets["homepage"].flash_sale_add
    assert v.widgets["pdp_related"] is recs_settings.widgets["pdp_related"]
    assert variant_settings(recs_settings, {}) is recs_settings


def test_hot_reload_by_mtime_keeps_the_last_good_file(tmp_path, recs_settings, caplog) -> None:
    path = tmp_path / "exps.yaml"
    path.write_text(yaml.safe_dump({"experiments": [two("first")]}))
    mono = [0.0]
    e = Experiments(recs_settings, path, reload_check_s=1.0, monotonic=lambda: mono[0])
    assert e.assign("u1", "homepage").experiment == "first"

    def rewrite(doc) -> None:
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    rewrite({"experiments": [two("second")]})
    mono[0] = 0.5
    assert e.assign("u1", "homepage").experiment == "first"  # not checked yet
    mono[0] = 1.5
    assert e.assign("u1", "homepage").experiment == "second"
    rewrite("experiments: [ {name: broken")
    mono[0] = 3.0
    assert e.assign("u1", "homepage").experiment == "second"  # the typo does not stop serving
    assert "not valid YAML" in e.last_error
    assert any("keeping the previous experiments" in r.message for r in caplog.records)
    rewrite({"experiments": []})
    mono[0] = 4.5
    assert e.assign("u1", "homepage").arms == () and e.last_error is None and e.reloads == 2


def test_a_missing_or_invalid_file_at_start_is_a_config_error(tmp_path, recs_settings) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Experiments(recs_settings, tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"experiments": [{"name": "x"}]}))
    with pytest.raises(ConfigError, match="variants"):
        Experiments(recs_settings, tmp_path / "bad.yaml")


def test_assignment_is_the_documented_hash(recs_settings) -> None:
    """Pinned: layer position = bucket("layer\\x1f" + layer, user); variant = bucket(salt, user) over the
    holdout then the weights, so any replica (or another language) can recompute it."""
    e = exps(recs_settings, {"name": "pin", "layer": "L", "salt": "s-1", "holdout": 0.1, "traffic": 0.8,
                             "variants": [{"name": "control", "weight": 1}, {"name": "b", "weight": 3}]})  # fmt: skip
    for i in range(3000):
        uid = f"p{i}"
        want = None
        if bucket("layer\x1fL", uid) < 0.8:
            b = bucket("s-1", uid)
            want = "holdout" if b < 0.1 else "control" if b < 0.1 + 0.9 * 0.25 else "b"
        assert e.assign(uid, "homepage").variant == want
    assert bucket("s", "u1") == 0.11790946139918598  # BLAKE2b-64 of b"s\x1fu1", big-endian / 2**64
