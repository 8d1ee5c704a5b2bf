"""Order events in the rollup store: written once per event-log position, by several processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hotpath.stores.rollups import DuckDbRollupStore


def test_order_batches_are_idempotent_per_partition_offset(tmp_path) -> None:
    st = DuckDbRollupStore(tmp_path / "r.duckdb", release=True)
    rows = [(off, f"m{off % 3}", "c1", 2, 1_767_225_600_000 + off, "p") for off in range(0, 20, 2)]
    assert st.record_order_batch("views", 0, rows) == 10
    assert st.record_order_batch("views", 0, rows) == 0  # a replay of the same positions
    assert st.record_order_batch("views", 0, rows[5:] + [(25, "m9", "c1", 7, 1, "p")]) == 1  # overlap + one new
    assert st.record_order_batch("views", 1, rows[:2]) == 2  # another partition counts on its own
    assert st.recorded_offset("views", 0) == 26 and st.recorded_offset("views", 1) == 3
    assert st.recorded_offset("other", 0) == 0
    assert st.top_sellers("c1", 10) == [("m0", 10.0), ("m2", 8.0), ("m9", 7.0), ("m1", 6.0)]
    assert st._con is None  # a releasing writer holds the file only during a call


_WRITER = textwrap.dedent("""
    import sys, time, pathlib
    from hotpath.errors import ServiceUnavailable
    from hotpath.stores.rollups import DuckDbRollupStore
    st = DuckDbRollupStore(pathlib.Path(sys.argv[1]), release=True)
    part = int(sys.argv[2])
    for i in range(30):
        rows = [(i * 10 + j, "m%d" % part, "c", 1, 1767225600000, "p") for j in range(10)]
        while True:
            try:
                st.record_order_batch("views", part, rows)
                break
            except ServiceUnavailable:  # the file is open in another process: try again
                time.sleep(0.005)
""")


def test_two_processes_writing_one_file_lose_nothing(tmp_path) -> None:
    path = tmp_path / "shared.duckdb"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(p)]) for p in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    st = DuckDbRollupStore(path, read_only=True)
    assert st.top_sellers("c", 5) == [("m0", 300.0), ("m1", 300.0)]
    assert (st.recorded_offset("views", 0), st.recorded_offset("views", 1)) == (300, 300)
    st.close()
