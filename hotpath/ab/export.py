"""A/B events in Amplitude's HTTP V2 event shape (the conversion only; sending is
:mod:`hotpath.clients.amplitude`).

- exposure -> ``event_type: "recs_exposure"``, ``event_properties: {experiment, variant, widget}``
- click / add_to_cart / order -> ``recs_click`` / ``add_to_cart`` / ``order``; ``event_properties``
  name the experiment and variant of the user's latest exposure before it (and every experiment the
  user was in so far, as ``experiments: ["exp:variant", ...]``); an order carries ``revenue``.

``insert_id`` is the event's id on the log, so exporting the same event twice is deduplicated by
Amplitude (it keeps insert_ids for 7 days).
"""

from __future__ import annotations

from collections.abc import Iterable

from hotpath.ab.events import Exposure, Outcome

__all__ = ["EVENT_TYPES", "to_amplitude"]

EVENT_TYPES = {"exposure": "recs_exposure", "click": "recs_click", "add_to_cart": "add_to_cart", "order": "order"}


def to_amplitude(events: Iterable[Exposure | Outcome], known: dict[str, dict[str, tuple[int, str]]] | None = None) -> list[dict]:
    """Convert in time order. ``known`` (user -> experiment -> (last exposure ms, variant)) carries the
    users' assignments from earlier exports; it is updated in place."""
    known = {} if known is None else known
    out = []
    for e in sorted(events, key=lambda x: x.ts_ms):
        if isinstance(e, Exposure):
            known.setdefault(e.user_id, {})[e.experiment] = (e.ts_ms, e.variant)
            props = {"experiment": e.experiment, "variant": e.variant, "widget": e.widget}
            out.append({"event_type": EVENT_TYPES["exposure"], "user_id": e.user_id, "time": e.ts_ms,
                        "insert_id": e.id, "event_properties": props})  # fmt: skip
            continue
        props: dict = {"widget": e.widget} if e.widget else {}
        arms = known.get(e.user_id)
        if arms:
            exp, (_, variant) = max(arms.items(), key=lambda kv: kv[1][0])
            props.update(experiment=exp, variant=variant, experiments=sorted(f"{k}:{v}" for k, (_, v) in arms.items()))
        ev = {"event_type": EVENT_TYPES[e.type], "user_id": e.user_id, "time": e.ts_ms, "insert_id": e.id,
              "event_properties": props}  # fmt: skip
        if e.type == "order":
            ev["revenue"] = e.revenue
        out.append(ev)
    return out
