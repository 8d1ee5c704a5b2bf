"""The offline replay: CSV in, JSON out, same numbers as the streaming operator; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotpath.coview.generator import generate
from hotpath.coview.replay import read_csv_events, replay_csv, write_csv
from hotpath.coview.windows import WindowSpec
from hotpath.errors import BadInput, NotFound

from .reference import assert_same_ranking, session_windows, sliding_windows, topk_reference


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory) -> tuple[Path, dict]:
    gen = generate(sessions=3000, clusters=8, cluster_size=21, noise_cats=300, span_ms=6 * 3_600_000, seed=21)
    path = tmp_path_factory.mktemp("replay") / "events.csv"
    write_csv(path, ((e.user, e.cat, e.ts) for e in gen.events), header=("user", "category", "ts_ms"))
    return path, gen.planted


def test_cli_replay_recovers_planted_pairs_and_matches_brute_force(planted_csv, tmp_path) -> None:
    path, planted = planted_csv
    out = tmp_path / "out.json"
    r = run_cli("coview", "replay", str(path), "--session-col", "user", "--key-col", "category", "--time-col", "ts_ms",
                "--time-unit", "ms", "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["events"] > 15_000
    got = {k: [(b, s) for b, s in v] for k, v in json.loads(out.read_text()).items()}
    precision = [len({b for b, _ in got.get(k, [])[:20]} & pl) / 20 for k, pl in planted.items()]
    assert sum(precision) / len(precision) >= 0.9
    sessions, keys, ts = read_csv_events(path, session_col="user", key_col="category", time_col="ts_ms", time_unit="ms")
    events = list(zip(sessions, keys, ts.tolist()))
    want = topk_reference(sliding_windows(events, 900_000, 300_000), decay=0.95, top_k=20)
    assert_same_ranking(got, want)


def test_replay_options_session_window_decay_topk(planted_csv) -> None:
    path, _ = planted_csv
    spec = WindowSpec(kind="session", gap_ms=600_000, slide_ms=300_000)
    res = replay_csv(path, session_col="user", key_col="category", time_col="ts_ms", time_unit="ms", spec=spec,
                     decay=0.5, top_k=5)
    sessions, keys, ts = read_csv_events(path, session_col="user", key_col="category", time_col="ts_ms", time_unit="ms")
    want = topk_reference(session_windows(list(zip(sessions, keys, ts.tolist())), 600_000, 300_000), decay=0.5, top_k=5)
    assert_same_ranking(res.related, want)
    assert max(len(v) for v in res.related.values()) == 5


def test_any_string_key_works(tmp_path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("sid,item,when\n"
                    "s1,sku-ü-1,2026-01-01T00:00:00Z\ns1,sku 2,2026-01-01T00:01:00+00:00\n"
                    "s2,sku-ü-1,2026-01-01T00:00:00\ns2,\"sku,3\",1767225700\n")
    res = replay_csv(path, session_col="sid", key_col="item", time_col="when", spec=WindowSpec())
    assert {b for b, _ in res.related["sku-ü-1"]} == {"sku 2", "sku,3"}


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("user,cat,ts\nu1,a,1\n", ("user", "category", "ts"), "has no column 'category' (columns: user, cat, ts)"),
        ("user,cat,ts\nu1,a,1767225600\nu1,b,last tuesday\n", ("user", "cat", "ts"),
         "row 3, column 'ts': cannot parse 'last tuesday' as a timestamp"),
        ("user,cat,ts\nu1,a,nan\n", ("user", "cat", "ts"), "row 2, column 'ts': timestamp 'nan' is not finite"),
        ("user,cat,ts\nu1,,1767225600\n", ("user", "cat", "ts"), "row 2, column 'cat': empty value"),
        ("user,cat,ts\nu1,a\n", ("user", "cat", "ts"), "row 2: 2 fields"),
        ("", ("user", "cat", "ts"), "is empty (no header row)"),
    ],
)
def test_bad_csv_gives_one_clear_line(tmp_path, content: str, args, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(BadInput) as info:
        read_csv_events(path, session_col=args[0], key_col=args[1], time_col=args[2])
    assert message in info.value.message
    r = run_cli("coview", "replay", str(path), "--session-col", args[0], "--key-col", args[1], "--time-col", args[2],
                "--out", str(tmp_path / "o.json"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_missing_file(tmp_path) -> None:
    with pytest.raises(NotFound):
        read_csv_events(tmp_path / "nope.csv", session_col="a", key_col="b", time_col="c")


def test_duckdb_reader_gives_what_the_csv_module_gives(tmp_path) -> None:
    from hotpath.coview.replay import _read_csv_fast, replay_arrays

    gen = generate(sessions=800, clusters=4, cluster_size=9, noise_cats=40, span_ms=3 * 3_600_000, seed=4)
    path = tmp_path / "e.csv"
    # extra columns, quoted keys with commas and quotes, non-ASCII, seconds with fractions
    rows = [(f"x{i}", e.user, f'{e.cat},"é"' if i % 7 == 0 else e.cat, f"{e.ts / 1000:.3f}")
            for i, e in enumerate(gen.events)]
    write_csv(path, rows, header=("id", " user ", "cat", "ts"))
    fast = _read_csv_fast(path, session_col="user", key_col="cat", time_col="ts", time_unit="auto")
    assert fast is not None  # a clean file takes the DuckDB path
    got = replay_csv(path, session_col="user", key_col="cat", time_col="ts", spec=WindowSpec())
    s, k, t = read_csv_events(path, session_col="user", key_col="cat", time_col="ts")
    want = replay_arrays(s, k, t, spec=WindowSpec())
    assert got.related == want.related and (got.windows, got.pairs) == (want.windows, want.pairs)
    assert any("," in key for key in got.related)
    # ISO times, or an empty value: the csv module's reader takes over
    iso = tmp_path / "iso.csv"
    iso.write_text("s,k,t\na,x,2026-01-01T00:00:00Z\n")
    assert _read_csv_fast(iso, session_col="s", key_col="k", time_col="t", time_unit="auto") is None
    empty = tmp_path / "empty.csv"
    empty.write_text("s,k,t\na,,1767225600\n")
    assert _read_csv_fast(empty, session_col="s", key_col="k", time_col="t", time_unit="auto") is None
