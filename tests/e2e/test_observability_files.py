"""The operators' files in deploy/: the Grafana dashboard and the Prometheus alert rules.

Every metric a dashboard query or an alert rule names must be one that a live
gateway exports: a renamed metric must not leave a blank panel, or an alert
that can never fire. The names are compared with a real scrape of a gateway
process. promtool checks the dashboard's queries too (as recording rules);
``make lint-alerts`` runs ``promtool check rules`` and the rules' unit tests,
and the test here checks that every alert has unit tests, firing and quiet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gateway_client import Client, Side

from tests.ops_support import REPO_ROOT, GatewayProcess
from tests.processes import require_tool

pytestmark = pytest.mark.e2e

DASHBOARD = REPO_ROOT / "deploy/grafana/gateway-dashboard.json"
ALERTS = REPO_ROOT / "deploy/prometheus/alerts.yaml"
ALERT_TESTS = REPO_ROOT / "deploy/prometheus/alerts.test.yaml"
METRICS_AT = re.compile(r"metrics on (http://\S+/metrics)")

# Words of PromQL that are not metric names (functions and aggregations are
# recognised by the parenthesis that follows them).
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Modifiers whose parenthesised lists name labels, not metrics.
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
# Grafana's variables, replaced by what Prometheus would be sent.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    '"$instance"': '".*"',
}
# Series that Prometheus itself makes for a target, not the gateway.
PROMETHEUS_MADE = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # label values, quoted
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery windows
    text = LABEL_LISTS.sub("", text)
    text = re.sub(r"\boffset\s+\S+", "", text)
    names = set()
    # Not after a digit or a dot: 1e3 is a number, not the metric "e3".
    for match in re.finditer(r"(?<![\w.:])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


def test_metric_names_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, instance) (rate(a_seconds_bucket{x="b c"}[5m])))'
        " > 1e3 and on (job) b_total offset 15m unless c"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}


def _grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows hold theirs


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard, Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"]["query"])
            assert found, f"variable {variable['name']}: only label_values(metric, label) here"
            queries.append(found.group(1))
    return [_grafana_to_promql(q) for q in queries]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name a live gateway's /metrics offers, after it has filled an order."""
    data = tmp_path_factory.mktemp("metrics-data")
    args = ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", str(data)]
    gateway = GatewayProcess.start(args)
    try:
        url = gateway.wait_for(METRICS_AT, within=10).group(1)
        # One order filled: RPCs, the broker, the journal and a stream all have samples.
        with (
            Client(gateway.address) as client,
            client.subscribe(["acct-m"], after_sequence=0) as updates,
        ):
            placed = client.place_order("acct-m", "AAPL", Side.BUY, 1)
            for update in updates:  # bounded by the test's timeout
                if update.order.order_id == placed.order_id and update.order.is_terminal:
                    break
        # S310: the URL is the http:// one the gateway just logged (METRICS_AT).
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return series_names(response.read().decode())
    finally:
        gateway.terminate(within=15)


def series_names(exposition: str) -> set[str]:
    """Names of the series in Prometheus text format, declared ones included.

    A labelled metric with no children yet has only its ``# TYPE`` line; its
    series appear at the first event, under the names its type implies.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "untyped": ("",),
    }
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total") if kind == "counter" else name
            names.update(base + suffix for suffix in suffixes[kind])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def test_every_dashboard_query_names_only_exported_metrics(exported: set[str]) -> None:
    queries = dashboard_queries()
    assert len(queries) > 20
    for query in queries:
        names = metric_names(query)
        assert names, f"no metric found in {query!r}"
        assert names <= exported, f"{query!r} names {sorted(names - exported)}, not exported"


def test_every_alert_names_only_exported_metrics(exported: set[str]) -> None:
    for rule in alert_rules():
        names = metric_names(rule["expr"]) - PROMETHEUS_MADE
        assert names, f"{rule['alert']}: no metric found in its expr"
        assert names <= exported, f"{rule['alert']} names {sorted(names - exported)}"


def test_every_alert_has_unit_tests_that_fire_and_stay_quiet() -> None:
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {
        "GatewayBrokerDown",
        "GatewayJournalCommitSlow",
        "GatewayInboxFilling",
        "GatewaySubscriberCutOffRepeatedly",
        "GatewayOrdersStuckInDoubt",
        "GatewayRestarted",
    } <= alerts
    cases = [
        case
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert alerts <= fires, f"never shown to fire: {sorted(alerts - fires)}"
    assert alerts <= quiet, f"never shown to stay quiet: {sorted(alerts - quiet)}"
    for rule in alert_rules():
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]


def promtool() -> str:
    return require_tool(
        "promtool",
        os.environ.get("GATEWAY_PROMTOOL"),
        REPO_ROOT / ".tools/bin/promtool",
        hint="run `make tools`",
    )


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as it would a recording rule's."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": query}
                    for i, query in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_fit_the_grid_without_overlapping() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    taken: dict[tuple[int, int], str] = {}
    for panel in _panels(dashboard["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
