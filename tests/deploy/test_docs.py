"""docs/metrics.md names every metric (as Prometheus sees it)."""

from pathlib import Path

from hotpath.observability.metrics import METRICS


def test_every_metric_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for d in METRICS.values():
        name = "ray_" + d.name + ("_total" if d.kind == "counter" else "")
        assert f"`{name}`" in doc, name
