"""The Grafana dashboards (ops/grafana/*.json) against the metrics the code really exports.

Every metric name in every PromQL `expr` (panels and template variables) must be a sample name
the matching registry exports (prometheus_client adds `_total` to counters, `_bucket` /
`_count` / `_sum` to histograms, `_created` to both), every label a selector matches on must be
one of that metric's labels (or Prometheus' own `instance` / `job`, `le` on buckets), and each
dashboard must be importable: a `${DS_PROMETHEUS}` datasource input used by every panel and
query, unique panel ids, panels within Grafana's 24 columns. Each dashboard also shows every
metric its process exports (except those listed as not shown, with the reason).
"""

import json
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from offchain.oracle.metrics import Metrics
from offchain.provider.metrics import AgentMetrics
from offchain.provider.store import STATES

GRAFANA = Path(__file__).resolve().parent.parent / "ops" / "grafana"
DS_UID = "${DS_PROMETHEUS}"
# Suffixes of the samples each metric type exports (prometheus_client).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
PROMETHEUS_LABELS = {"instance", "job"}
# Exported but on no panel, and why.
NOT_SHOWN = {
    "oracle": {"gpunet_oracle_machines": "declared in oracle/metrics.py but never set by the service"},
    "provider": {},
}
# Label values the dashboards may match on, where the code fixes them.
LABEL_VALUES = {("gpunet_agent_jobs", "state"): set(STATES)}

METRIC = re.compile(r"\b(gpunet_[a-zA-Z0-9_:]+)\b(\s*\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _exported(metrics) -> dict[str, tuple[str, tuple[str, ...]]]:
    """sample name -> (metric family name, label names), for every metric of a Metrics object."""
    out = {}
    for m in vars(metrics).values():
        if isinstance(m, MetricWrapperBase):
            labels = tuple(m._labelnames)
            for suffix in SUFFIXES[m._type]:
                out[m._name + suffix] = (m._name, labels + (("le",) if suffix == "_bucket" else ()))
    # The registry agrees (no metric registered behind the attributes' back).
    families = {f.name for f in metrics.registry.collect()}
    assert families == {fam for fam, _ in out.values()}
    return out


BOARDS = {"oracle": Metrics, "provider": AgentMetrics}


def _load(name: str) -> dict:
    return json.loads((GRAFANA / f"{name}.json").read_text())


def _panels(board: dict) -> list[dict]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # panels inside a collapsed row
    return out


def _queries(board: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    qs = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in _panels(board) for t in p.get("targets", [])]
    for v in board.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            qs.append((f"variable {v['name']!r}", q))
    return qs


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_metric_in_every_expr_is_exported(name):
    exported = _exported(BOARDS[name]())
    board = _load(name)
    used, problems = set(), []
    for where, expr in _queries(board):
        found = METRIC.findall(expr)
        if not found:
            problems.append(f"{where}: no gpunet metric in {expr!r}")
        for metric, _, selector in found:
            if metric not in exported:
                problems.append(f"{where}: {metric} is not exported (families: counters end in _total)")
                continue
            family, labels = exported[metric]
            used.add(family)
            for label, _, value in MATCHER.findall(selector):
                if label not in labels and label not in PROMETHEUS_LABELS:
                    problems.append(f"{where}: {metric} has no label {label!r} (has {labels})")
                known = LABEL_VALUES.get((family, label))
                if known is not None and not value.startswith("$"):
                    unknown = set(value.split("|")) - known
                    if unknown:
                        problems.append(f"{where}: {metric}{{{label}}} never takes {sorted(unknown)}")
    assert not problems, "\n".join(problems)
    families = {fam for fam, _ in exported.values()}
    missing = families - used - set(NOT_SHOWN[name])
    assert not missing, f"{name}.json shows none of {sorted(missing)}: add a panel or list them in NOT_SHOWN"
    assert not set(NOT_SHOWN[name]) & used, "a metric listed as not shown is shown"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_is_importable(name):
    board = _load(name)
    assert board["schemaVersion"] >= 36 and board["uid"] == f"gpunet-{name}" and board["title"]
    assert board.get("id") is None  # import assigns one
    inputs = {i["name"]: i for i in board["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource" and inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": DS_UID}, p["title"]
        assert p["targets"] and p.get("description"), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DS_UID and t["expr"].strip(), p["title"]
    for v in board["templating"]["list"]:
        if v.get("type") == "query":
            assert v["datasource"]["uid"] == DS_UID
    # Everything that names the datasource names the input, nothing a concrete datasource.
    text = json.dumps(board)
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {board["uid"], "-- Grafana --"}
    assert uids == {DS_UID}, uids
