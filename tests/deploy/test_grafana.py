"""deploy/grafana/vdp-dashboard.json charts only series vdp really exports, by labels it sets."""
from __future__ import annotations

import json
import re
from pathlib import Path

import vdp.engine.metrics as metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "vdp-dashboard.json"


def exported() -> dict[str, set[str]]:
    """Prometheus series names (Ray adds ``ray_`` and ``_total`` to counters) -> their labels."""
    src = Path(metrics.__file__).read_text()
    out = {}
    for kind, name, tags in re.findall(r'_metric\("(counter|gauge)", "(\w+)",.*?(ACTOR_TAGS|DRIVER_TAGS)', src, re.S):
        labels = set(getattr(metrics, tags)) | ({"kind"} if name == "vdp_stage_fallbacks" else set())
        out[f"ray_{name}{'_total' if kind == 'counter' else ''}"] = labels
    return out


def test_every_query_uses_exported_series_and_labels():
    dash = json.loads(DASHBOARD.read_text())
    series = exported()
    assert len(series) == 7
    used = set()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    queries = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queries += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    for q in queries:
        names = set(re.findall(r"\bray_vdp_\w+", q))
        assert names and names <= set(series), q
        used |= names
        labels = set(re.findall(r"(\w+)=~?\"", q)) | {
            l.strip() for grp in re.findall(r"by \(([^)]*)\)", q) for l in grp.split(",")}
        for name in names:
            assert labels <= series[name], (q, labels - series[name])
    assert used == set(series)  # every exported series is on the dashboard
