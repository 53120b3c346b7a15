"""The Grafana dashboard is valid JSON and names only metrics that exist or are planned."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from baton_shared.observability import metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "baton.json"
SUFFIXES = ("_bucket", "_count", "_sum")


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "baton-overview"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p.get("targets") for p in dashboard["panels"] if p["type"] != "row")


def test_every_backbone_metric_the_dashboard_uses_exists() -> None:
    doc = metrics.__doc__ or ""
    used = {
        name
        for expr in exprs(json.loads(DASHBOARD.read_text()))
        for name in re.findall(r"\bbaton_(?:stream|outbox|http|pruned)_[a-z_]+", expr)
    }
    assert used
    for name in used:
        base = next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)
        assert f"`{base}`" in doc, f"{name} is not a backbone metric"
