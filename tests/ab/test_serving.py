"""Serve-time integration: variant settings through RecsService, the hook naming the arms in the
response, exposures batched to a real event log off the request path (and kept while it is down)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from hotpath.ab.events import ExposureBuffer, read_events
from hotpath.ab.experiments import Experiments, parse_experiments, variant_settings
from hotpath.ab.hook import AbHook
from hotpath.errors import StreamError
from hotpath.recs.catalog import master_uuid
from hotpath.recs.model import RecsResult, RelatedQuery
from hotpath.recs.service import RecsService
from hotpath.streams.embedded_log import EmbeddedEventLog

OVERRIDES = {"semantic_weight": 0.2, "coview_weight": 0.8, "recent_view_decay": 0.5,
             "widgets": {"pdp_related": {"boost_power": 0.0, "min_rating": 3.0}}}  # fmt: skip


def test_a_variant_serves_what_a_service_built_with_its_settings_serves(stack) -> None:
    base = stack.service
    v = variant_settings(base.settings, OVERRIDES)
    other = RecsService(v, stack.cache, stack.store, None, subscribe=False)
    differ = 0
    for i in range(60):
        q = RelatedQuery(f"u{i % 50}", master_uuid(i * 37 % 2500), "pdp_related", 20)
        hist = stack.history(i % 50)
        got = base.related(q, hist, settings=v).to_json()
        assert got == other.related(q, hist).to_json()
        differ += got != base.related(q, hist).to_json()
    assert differ > 30  # the overrides change most answers
    other.close()


def test_untouched_widgets_are_served_as_before(stack) -> None:
    base = stack.service
    v = variant_settings(base.settings, {"widgets": {"homepage": {"flash_sale_mult": 3.0}}})
    q = RelatedQuery("u3", master_uuid(11), "pdp_related", 20)
    assert base.related(q, stack.history(3), settings=v).to_json() == base.related(q, stack.history(3)).to_json()


class FlakyLog(EmbeddedEventLog):
    """The embedded log whose appends fail while ``down`` is set (an outage of the event log)."""

    down = True

    async def append(self, topic, events):
        if self.down:
            raise StreamError("event log down")
        return await super().append(topic, events)


def test_hook_names_the_variant_and_exposures_reach_the_log_even_after_an_outage(stack, tmp_path, recs_settings) -> None:
    s = stack.settings.model_copy(update={"runtime_dir": tmp_path})
    parsed = parse_experiments({"experiments": [
        {"name": "e1", "layer": "a", "variants": [{"name": "control"}, {"name": "t", "overrides": OVERRIDES}]},
        {"name": "e2", "layer": "b", "widgets": ["homepage"], "variants": [{"name": "x"}, {"name": "y"}]},
    ]}, stack.settings.recs)  # fmt: skip
    log = FlakyLog(s, path=tmp_path / "log")
    buf = ExposureBuffer(log, "ab.exposures", flush_interval_s=0.05)
    hook = AbHook(Experiments(stack.settings.recs, parsed=parsed), buf)
    served = []
    for i in range(200):
        uid, widget = f"user{i}", ("pdp_related", "homepage")[i % 2]
        q = RelatedQuery(uid, master_uuid(i), widget, 5)
        hist = stack.history(i % 50) if i % 3 else None
        a = hook.assign(uid, widget, hist)
        res = stack.service.related(q, hist, settings=a.settings)
        hook.served(res, uid, widget, a)
        body = orjson.loads(res.to_bytes())
        served.append((uid, widget, body["meta"]["experiments"]))
        assert body["meta"]["experiments"][0]["experiment"] == "e1"
        assert len(body["meta"]["experiments"]) == (2 if widget == "homepage" else 1)
    anon = stack.service.related(RelatedQuery(None, None, "homepage", 5))
    hook.served(anon, None, "homepage", hook.assign(None, "homepage"))
    assert "meta" not in anon.to_json()
    with pytest.raises(StreamError):
        buf.flush(timeout_s=0.5)  # the log is down: nothing written, nothing lost
    assert buf.failures >= 1 and buf.written == 0
    log.down = False
    buf.flush(timeout_s=20)
    evs = asyncio.run(read_events(log, "ab.exposures"))
    want = sorted((u, w, a["experiment"], a["variant"]) for u, w, arms in served for a in arms)
    assert sorted((e.user_id, e.widget, e.experiment, e.variant) for e in evs) == want
    assert len({e.id for e in evs}) == len(evs) == buf.written
    buf.close()
    asyncio.run(log.close())


def test_a_full_buffer_drops_and_counts(recs_settings, tmp_path, stack) -> None:
    log = FlakyLog(stack.settings, path=tmp_path / "log2")
    log.down = True
    buf = ExposureBuffer(log, "t", flush_interval_s=10, max_pending=5)
    e = Experiments(recs_settings, parsed=parse_experiments({"experiments": [{"name": "e", "variants": [{"name": "a"}, {"name": "b"}]}]}, recs_settings))
    for i in range(8):
        buf.record(f"u{i}", "homepage", e.assign(f"u{i}", "homepage"))
    assert buf.pending == 5 and buf.dropped == 3
    log.down = False
    buf.close()
    asyncio.run(log.close())


def test_without_an_experiments_file_the_hook_does_nothing(stack) -> None:
    hook = AbHook.from_settings(stack.settings, lambda s: pytest.fail("no log is opened"))
    a = hook.assign("u1", "homepage", [[("m", 1.0)], []])
    assert a.arms == () and a.settings is None
    res = RecsResult(item_dicts=[], widget="homepage")
    hook.served(res, "u1", "homepage", a)
    assert res.meta == {}
