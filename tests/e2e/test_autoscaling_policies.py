"""Autoscaling policies (CONTRACT §5, §8) on any chart layout: KEDA scales the explainer
on hypergraph_backlog_seconds within 2..16 at 1.0, the queried metric is really emitted
with the queried labels, a CPU and a GPU Karpenter pool reference their node classes, and
ArgoCD's inline values satisfy the chart's schema when it has one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from pytest_sidecar import Evidence, MetricsFactory, SidecarConfig, Target, Traces, manifests
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.fixtures.platform import Platform
from pytest_sidecar.outcomes import SkipReason, skip

pytestmark = [pytest.mark.platform, pytest.mark.profile("platform")]

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def explainer_scaler(platform: Platform) -> dict[str, Any]:
    """The ScaledObject whose scaleTargetRef names the explainer's Deployment."""
    explainers = {d["metadata"]["name"] for d in manifests.by_kind(platform.rendered,
                                                                     "Deployment")
                  if manifests.role_of(d) == "explainer"}
    scalers = [s for s in manifests.by_kind(platform.rendered, "ScaledObject")
               if (s["spec"].get("scaleTargetRef") or {}).get("name") in explainers]
    assert scalers, f"§8: no KEDA ScaledObject targets the explainer ({sorted(explainers)})"
    return scalers[0]


@pytest.mark.clause("§8/keda")
def test_keda_scales_the_explainer_on_its_backlog_within_the_contracts_range(
        platform: Platform, evidence: Evidence) -> None:
    spec = explainer_scaler(platform)["spec"]
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    assert (low, high) == (2, 16), f"§8: the explainer scales {low}..{high}, not 2..16"
    backlog = [t for t in spec.get("triggers", [])
               if "hypergraph_backlog_seconds" in str((t.get("metadata") or {}).get("query"))]
    assert backlog, "§8: no trigger queries hypergraph_backlog_seconds"
    threshold = float(backlog[0]["metadata"]["threshold"])  # a number, not just text
    assert threshold == 1.0, f"§8: backlogSecondsTarget {threshold}, not 1.0"
    pdbs = [p for p in manifests.by_kind(platform.rendered, "PodDisruptionBudget")
            for d in manifests.by_kind(platform.rendered, "Deployment")
            if manifests.role_of(d) == "explainer"
            and manifests.selects(p["spec"].get("selector"), manifests.pod_labels(d))]
    floor = max((p["spec"].get("minAvailable", 0) for p in pdbs
                 if isinstance(p["spec"].get("minAvailable"), int)), default=0)
    if floor > low:
        evidence.advise(f"the explainer's PDB keeps {floor} pods but KEDA may scale to {low}")
    evidence.record(min=low, max=high, threshold=threshold, pdb_min_available=floor)


@pytest.mark.clause("§8/keda")
@pytest.mark.needs("chat", "explain", "metrics:explainer")
def test_the_metric_keda_queries_is_emitted_with_its_labels(
        platform: Platform, sidecar_target: Target, metrics_factory: MetricsFactory,
        sidecar_config: SidecarConfig, evidence: Evidence) -> None:
    triggers = explainer_scaler(platform)["spec"].get("triggers", [])
    query = next((str(t["metadata"]["query"]) for t in triggers
                  if "query" in (t.get("metadata") or {})), "")
    selectors = SELECTOR.findall(query)
    assert selectors, f"§8: no metric selector in the explainer's KEDA query {query!r}"
    # The target's own explainer: the chart and the deployment under test belong together.
    source = sidecar_target
    token = source.tenants["a"].tokens.write if source.tenants else None
    with SidecarClient(source.url, token, sidecar_config.timeout) as client:
        own = Traces(source, sidecar_config, lambda: client)
        for granularity in ("sentence", "token"):  # every granularity's series, for real
            own.finished(client, granularity=granularity)
    scrape = metrics_factory("explainer", source).scrape()
    checked = {}
    for metric, matchers in selectors:
        samples = scrape.select(metric)
        assert samples, f"§8: the explainer does not emit {metric} (KEDA queries it)"
        for label, op, value in MATCHER.findall(matchers):
            present = {dict(s.labels).get(label) for s in samples}
            assert present - {None}, f"§8: {metric} has no label {label}"
            if op in ("=", "=~"):
                wanted = value.split("|") if op == "=~" else [value]
                assert set(wanted) <= present, f"§8: {metric}{{{label}}} lacks {wanted}"
        checked[metric] = len(samples)
    evidence.record(query=query, series=checked, scraped=source.metrics_explainer)


@pytest.mark.clause("§8/karpenter")
def test_karpenter_cpu_and_gpu_pools_reference_their_node_classes(platform: Platform,
                                                                  evidence: Evidence) -> None:
    pools = manifests.by_kind(platform.karpenter, "NodePool")
    classes = {c["metadata"]["name"] for c in manifests.by_kind(platform.karpenter,
                                                                 "EC2NodeClass")}
    gpu = [p for p in pools if manifests.is_gpu_pool(p)]
    cpu = [p for p in pools if not manifests.is_gpu_pool(p)]
    assert cpu and gpu, (f"§8: a CPU and a GPU NodePool are required; found "
                         f"{len(cpu)} CPU and {len(gpu)} GPU")
    for pool in pools:
        ref = pool["spec"]["template"]["spec"].get("nodeClassRef") or {}
        assert ref.get("kind") == "EC2NodeClass" and ref.get("name") in classes, (
            f"§8: NodePool {pool['metadata']['name']} references {ref}, not one of its "
            f"EC2NodeClasses {sorted(classes)}")
    for pool in gpu:
        spec = pool["spec"]
        if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule"
                   for t in spec["template"]["spec"].get("taints") or []):
            evidence.advise(f"GPU pool {pool['metadata']['name']} is untainted: CPU pods "
                            "may land on GPU nodes")
        if not (spec.get("limits") or {}).get("nvidia.com/gpu"):
            evidence.advise(f"GPU pool {pool['metadata']['name']} has no GPU limit")
    evidence.record(cpu_pools=[p["metadata"]["name"] for p in cpu],
                    gpu_pools=[p["metadata"]["name"] for p in gpu], classes=sorted(classes))


@pytest.mark.clause("§8/argocd")
def test_argocd_inline_values_satisfy_the_charts_schema(platform: Platform,
                                                        evidence: Evidence) -> None:
    import jsonschema

    apps = manifests.by_kind(platform.argocd, "Application")
    assert apps, "§8: no ArgoCD Application"
    source = apps[0]["spec"].get("source") or {}
    helm = source.get("helm") or {}
    inline = dict(helm.get("valuesObject") or {})
    if helm.get("values"):  # the string form, YAML
        inline.update(yaml.safe_load(helm["values"]) or {})
    schema_file = platform.chart / "values.schema.json"
    if not schema_file.is_file():  # nothing to judge the values by: not a pass
        skip(SkipReason.NOT_DECLARED, "the chart has no values.schema.json to check the "
             "Application's inline values against (bad values surface only at deploy time)",
             "add values.schema.json to the chart", "§8")
    defaults = yaml.safe_load((platform.chart / "values.yaml").read_text()) or {}
    schema = json.loads(schema_file.read_text())

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(
                out.get(key), dict) else value
        return out

    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(
        merge(defaults, inline))]
    assert not errors, f"§8: the Application's values break the chart's schema: {errors}"
    evidence.record(inline_keys=sorted(inline), schema=schema_file.name)
