"""Manifest validation: built-in kinds, CRD kinds, and kinds nobody can validate."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sidecar.manifests import documents, validation_errors

pytest.importorskip("kubernetes_validate")

SCALED: dict[str, Any] = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
          "metadata": {"name": "x"},
          "spec": {"scaleTargetRef": {"name": "explainer"}, "minReplicaCount": 2,
                   "maxReplicaCount": 16,
                   "triggers": [{"type": "prometheus", "metadata": {
                       "serverAddress": "http://p:9090", "query": "up", "threshold": "1.0"}}]}}


def test_a_valid_scaled_object_passes() -> None:
    assert validation_errors(SCALED) == []


@pytest.mark.parametrize("broken,expected", [
    ({"spec": {**SCALED["spec"], "minReplicas": 2}}, "minReplicas"),  # a typo, closed schema
    ({"spec": {**SCALED["spec"], "triggers": [{"type": "prometheus",
                                               "metadata": {"threshold": 1.0}}]}},
     "is not of type 'string'"),  # KEDA metadata values are strings
])
def test_crd_mistakes_are_caught(broken: dict[str, Any], expected: str) -> None:
    errors = validation_errors({**SCALED, **broken})
    assert any(expected in e for e in errors), errors


def test_built_in_kinds_are_validated_strictly() -> None:
    (deployment,) = documents("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: two
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i}]}
""")
    assert any("'two' is not of type 'integer'" in e for e in validation_errors(deployment))


def test_a_kind_without_a_schema_is_an_error_unless_allowed() -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation_errors(widget) == [
        "Widget/w: no schema for example.com/v1 Widget (add one under schemas/crds/ or "
        "allow it)"]
    assert validation_errors(widget, allow_kinds=["Widget"]) == []


def test_the_sharded_load_job_is_valid_and_consistent() -> None:
    """manifests/load: valid Kubernetes, N the same in all three places, arguments that
    sidecar-load accepts, and a URL naming the chart's gateway Service."""
    from pathlib import Path

    from pytest_sidecar.cli.load import build_parser
    from pytest_sidecar.manifests import ToolMissing, by_kind, load_documents, render_chart

    root = Path(__file__).resolve().parents[2] / "manifests"
    docs = load_documents(root / "load" / "load-job.yaml")
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Job"]
    for doc in docs:
        assert validation_errors(doc) == [], doc["kind"]
    (job,) = by_kind(docs, "Job")
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "1").replace("$(SIDECAR_LOAD_TOKEN)", "t")
            for a in container["args"]]
    parsed = build_parser().parse_args(args)
    assert spec["completionMode"] == "Indexed" and spec["backoffLimit"] == 0
    assert spec["completions"] == spec["parallelism"] == parsed.shard[1]
    assert parsed.out == "/results/shard-1"
    try:
        rendered = render_chart(root / "helm" / "hypergraph")
    except ToolMissing:
        return  # the Service name is then checked where a renderer exists (CI has one)
    services = {f"http://{s['metadata']['name']}.{s['metadata'].get('namespace', 'hypergraph')}"
                f".svc" for s in by_kind(rendered, "Service")}
    assert parsed.url in services, services
