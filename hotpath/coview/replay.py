"""Offline replay: a CSV of events through the co-view operator, as fast as it can.

The columns named by ``session_col``, ``key_col`` and ``time_col`` are read (any other columns are
ignored). Rows are taken in event-time order, so nothing is late, and at the end the watermark
jumps past every window: the result equals what the streaming job computes for the same events
delivered in order (a test checks it). Windowing and pair counting are vectorised with numpy; the
per-epoch decay, add and top-K pruning run through the same :class:`ArrayCoviewState` as the
streaming shards.

Times: numbers are seconds since the epoch (``--time-unit ms`` for milliseconds), anything else
ISO-8601 (a trailing ``Z`` or an offset is understood).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import Literal

import numpy as np

from hotpath.coview.pairs import count_pairs
from hotpath.coview.topk import ArrayCoviewState
from hotpath.coview.windows import WindowSpec
from hotpath.errors import BadInput, NotFound

__all__ = ["ReplayResult", "read_csv_events", "replay_arrays", "replay_csv", "TimeUnit"]

TimeUnit = Literal["auto", "s", "ms", "iso"]


@dataclass
class ReplayResult:
    related: dict[str, list[tuple[str, float]]]
    events: int
    seconds: float
    windows: int
    pairs: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> str:
        return json.dumps({k: [[b, s] for b, s in v] for k, v in self.related.items()}, separators=(",", ":"))


# --------------------------------------------------------------------------- CSV input
def _parse_iso(text: str, row: int, col: str) -> int:
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"row {row}, column {col!r}: cannot parse {text!r} as a timestamp", field=col) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _times_ms(values: list[str], unit: TimeUnit, col: str, first_row: int) -> np.ndarray:
    scale = 1.0 if unit == "ms" else 1000.0
    if unit != "iso":
        try:
            arr = np.array(values, dtype=np.float64)
        except ValueError:
            arr = None
        if arr is not None:
            bad = np.flatnonzero(~np.isfinite(arr))
            if len(bad):
                i = int(bad[0])
                raise BadInput(f"row {first_row + i}, column {col!r}: timestamp {values[i]!r} is not finite", field=col)
            return np.round(arr * scale).astype(np.int64)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if unit != "iso":
            try:
                f = float(v)
            except ValueError:
                f = None
            if f is not None:
                if f != f or f in (float("inf"), float("-inf")):
                    raise BadInput(f"row {first_row + i}, column {col!r}: timestamp {v!r} is not finite", field=col)
                out[i] = round(f * scale)
                continue
            if unit in ("s", "ms"):
                raise BadInput(
                    f"row {first_row + i}, column {col!r}: cannot parse {v!r} as a number of {unit}", field=col
                )
        out[i] = _parse_iso(v, first_row + i, col)
    return out


def read_csv_events(
    path: Path, *, session_col: str, key_col: str, time_col: str, time_unit: TimeUnit = "auto"
) -> tuple[list[str], list[str], np.ndarray]:
    """``(sessions, keys, times_ms)`` from a CSV with a header row; clear errors naming row/column.

    Rows are numbered as a spreadsheet would: the header is row 1.
    """
    try:
        fh = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"CSV file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read CSV file {path}: {exc}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise BadInput(f"CSV file {path} is empty (no header row)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BadInput(f"CSV file {path}, row 1: {exc}") from None
        cols = [h.strip() for h in header]
        idx = []
        for name in (session_col, key_col, time_col):
            if name not in cols:
                raise BadInput(f"CSV file {path} has no column {name!r} (columns: {', '.join(cols)})", field=name)
            idx.append(cols.index(name))
        si, ki, ti = idx
        need = max(idx) + 1
        sessions: list[str] = []
        keys: list[str] = []
        times: list[str] = []
        try:
            rows = list(reader)
            if not rows or min(map(len, rows)) >= need:  # the usual case: every row complete
                sessions = list(map(itemgetter(si), rows))
                keys = list(map(itemgetter(ki), rows))
                times = list(map(itemgetter(ti), rows))
                rows = None
            else:  # read again, row by row, to name the row at fault
                del rows
                fh.seek(0)
                reader = csv.reader(fh)
                next(reader)
                rows = reader
            for row in rows or ():
                if len(row) < need:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        sessions.append("")  # a blank line: rejected below with its row number
                        keys.append("")
                        times.append("")
                        continue
                    raise BadInput(
                        f"CSV file {path}, row {reader.line_num}: {len(row)} fields, column "
                        f"{cols[need - 1]!r} needs {need}"
                    )
                sessions.append(row[si])
                keys.append(row[ki])
                times.append(row[ti])
        except csv.Error as exc:
            raise BadInput(f"CSV file {path}, row {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise BadInput(f"CSV file {path}, near row {reader.line_num + 1}: not UTF-8 ({exc.reason})") from None
    for name, values in ((session_col, sessions), (key_col, keys), (time_col, times)):
        try:
            bad = values.index("")
        except ValueError:
            continue
        raise BadInput(f"CSV file {path}, row {bad + 2}, column {name!r}: empty value", field=name)
    try:
        return sessions, keys, _times_ms(times, time_unit, time_col, 2)
    except BadInput as exc:
        raise BadInput(f"CSV file {path}, {exc.message}", field=time_col) from None


# --------------------------------------------------------------------------- the operator, batch form
def _factorize(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    names = list(dict.fromkeys(values))  # first-seen order
    table = dict(zip(names, range(len(names))))
    codes = np.fromiter(map(table.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, names


def _window_groups(
    sess: np.ndarray, keys: np.ndarray, ts: np.ndarray, spec: WindowSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(group id, key, epoch)`` of each distinct key of each window, in first-view order per group."""
    order = np.lexsort((np.arange(len(ts)), ts))  # event time, then input order
    sess, keys, ts = sess[order], keys[order], ts[order]
    d = spec.slide_ms
    if spec.kind == "sliding":
        m = spec.size_ms // d
        slot = ts // d
        rep = np.repeat(np.arange(len(ts)), m)
        widx = slot[rep] - np.tile(np.arange(m), len(ts))
        s_rep, k_rep = sess[rep], keys[rep]
        end = widx * d + spec.size_ms
        # group = (session, window start)
        w0 = widx.min() if len(widx) else 0
        gcode = s_rep * (int(widx.max() - w0) + 1 if len(widx) else 1) + (widx - w0)
        pos = np.arange(len(rep))
    else:
        o2 = np.lexsort((np.arange(len(ts)), ts, sess))
        s2, t2 = sess[o2], ts[o2]
        new = np.ones(len(ts), dtype=bool)
        if len(ts) > 1:
            new[1:] = (s2[1:] != s2[:-1]) | (t2[1:] - t2[:-1] >= spec.gap_ms)
        sid = np.cumsum(new) - 1
        last = np.zeros(int(sid.max()) + 1 if len(sid) else 0, dtype=np.int64)
        np.maximum.at(last, sid, t2)
        inv = np.empty_like(o2)
        inv[o2] = np.arange(len(o2))
        gcode = sid[inv]
        k_rep = keys
        end = last[gcode] + spec.gap_ms
        pos = np.arange(len(ts))
    # distinct (group, key), keeping the first view's position
    nk = int(keys.max()) + 1 if len(keys) else 1
    gk = gcode * nk + k_rep
    uniq, first = np.unique(gk, return_index=True)
    g = uniq // nk
    k = uniq % nk
    e = end[first] // d
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(g)])
    capped = spec.max_keys and len(sizes) and int(sizes.max()) > spec.max_keys
    if capped:  # keep the first max_keys distinct keys of a window, in view order
        o = np.lexsort((pos[first], g, e))
    else:
        o = np.lexsort((g, e))
    g, k, e = g[o], k[o], e[o]
    if capped:
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        sizes = np.diff(np.r_[starts, len(g)])
        rank = np.arange(len(g)) - np.repeat(starts, sizes)
        keep = rank < spec.max_keys
        g, k, e = g[keep], k[keep], e[keep]
    return g, k, e


def replay_arrays(
    sessions: Sequence[str],
    keys: Sequence[str],
    times_ms: np.ndarray,
    *,
    spec: WindowSpec,
    decay: float = 0.95,
    top_k: int = 20,
    min_score: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> ReplayResult:
    t0 = clock()
    sess_codes, _ = _factorize(sessions)
    key_codes, names = _factorize(keys)
    res = _replay_codes(sess_codes, key_codes, names, np.asarray(times_ms, dtype=np.int64), spec=spec, decay=decay,
                        top_k=top_k, min_score=min_score)
    res.seconds = clock() - t0
    return res


def _replay_codes(
    sess_codes: np.ndarray, key_codes: np.ndarray, names: list[str], ts: np.ndarray, *, spec: WindowSpec,
    decay: float, top_k: int, min_score: float,
) -> ReplayResult:
    """:func:`replay_arrays` on factorized columns (``key_codes`` index ``names``)."""
    nk = max(1, len(names))
    g, k, e = _window_groups(sess_codes, key_codes, ts, spec)
    state = ArrayCoviewState(decay=decay, top_k=top_k, min_score=min_score)
    state.ids_of(names)  # ids = the codes above (first-seen order)
    n_windows = int(np.count_nonzero(np.r_[True, g[1:] != g[:-1]])) if len(g) else 0
    n_pairs = 0
    if len(e):
        bounds = np.flatnonzero(np.r_[True, e[1:] != e[:-1], True])
        for i in range(len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            a, b, counts = count_pairs(g[lo:hi], k[lo:hi], nk)
            if len(a):
                state.apply(int(e[lo]), a, b, counts)
                n_pairs += int(counts.sum())
    related = {key: top for key, top in state.items() if top}
    return ReplayResult(related, len(ts), 0.0, n_windows, n_pairs)


def replay_csv(
    path: Path,
    *,
    session_col: str,
    key_col: str,
    time_col: str,
    spec: WindowSpec,
    decay: float = 0.95,
    top_k: int = 20,
    min_score: float = 0.0,
    time_unit: TimeUnit = "auto",
) -> ReplayResult:
    """Read, window, count, decay and rank; ``seconds`` covers all of it, reading included."""
    t0 = time.perf_counter()
    fast = _read_csv_fast(path, session_col=session_col, key_col=key_col, time_col=time_col, time_unit=time_unit)
    if fast is not None:
        res = _replay_codes(*fast, spec=spec, decay=decay, top_k=top_k, min_score=min_score)
    else:  # anything unusual: the csv module's reader, which names the row and column at fault
        sessions, keys, ts = read_csv_events(path, session_col=session_col, key_col=key_col, time_col=time_col,
                                             time_unit=time_unit)
        res = replay_arrays(sessions, keys, ts, spec=spec, decay=decay, top_k=top_k, min_score=min_score)
    res.seconds = time.perf_counter() - t0
    return res


def _read_csv_fast(
    path: Path, *, session_col: str, key_col: str, time_col: str, time_unit: TimeUnit
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray] | None:
    """``(session codes, key codes, key names, times_ms)`` read by DuckDB's CSV reader (several
    times faster than the csv module), or ``None`` whenever the file is anything but a clean,
    complete CSV with numeric times (the caller then reads it with :func:`read_csv_events`, which
    gives the same result or names the row at fault). Rows stay in file order."""
    if time_unit == "iso":
        return None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh))
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError):
        return None
    cols = [h.strip() for h in header]
    if any(name not in cols for name in (session_col, key_col, time_col)):
        return None
    si, ki, ti = (cols.index(name) for name in (session_col, key_col, time_col))
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(cols))) + "}"
    sql = (
        f"SELECT c{si} AS s, c{ki} AS k, TRY_CAST(c{ti} AS DOUBLE) AS t,"
        f" (c{si} IS NULL OR c{ki} IS NULL OR TRY_CAST(c{ti} AS DOUBLE) IS NULL) AS bad"
        f" FROM read_csv(?, header = true, delim = ',', quote = '\"', escape = '\"', auto_detect = false,"
        f" strict_mode = true, columns = {columns})"
    )
    import duckdb

    con = duckdb.connect()
    try:
        got = con.execute(sql, [str(path)]).fetchnumpy()
    except duckdb.Error:
        return None
    finally:
        con.close()
    bad = np.ma.getdata(got["bad"])
    if not len(bad) or np.ma.getmaskarray(got["bad"]).any() or bad.any():
        return None  # empty, an empty value, or a time that is not a number (ISO, say)
    t = np.ma.getdata(got["t"]).astype(np.float64)
    if not np.isfinite(t).all():
        return None
    scale = 1.0 if time_unit == "ms" else 1000.0
    sess_codes, _ = _factorize(got["s"].tolist())
    key_codes, names = _factorize(got["k"].tolist())
    return sess_codes, key_codes, names, np.round(t * scale).astype(np.int64)


def write_csv(path: Path, rows: Iterable[tuple[str, str, int]], *, header: Sequence[str] = ("user", "cat", "ts")) -> int:
    """Write ``(session, key, time_ms)`` rows (tests and the bench use it). Returns the row count."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n
