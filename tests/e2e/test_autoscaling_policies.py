"""Autoscaling policies (CONTRACT §5, §8): KEDA bounds agree with the PDB and the chart,
the queried metric is really emitted with the queried labels, Karpenter pools and node
classes reference each other, and ArgoCD's inline values satisfy the chart's schema."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from pytest_sidecar import manifests
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.fixtures.traces import Traces

pytestmark = [pytest.mark.platform, pytest.mark.profile("platform"),
              pytest.mark.contract("§8", "§5")]

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def scaled_object(platform: Any) -> dict[str, Any]:
    (scaled,) = manifests.by_kind(platform.rendered, "ScaledObject")
    return scaled


@pytest.mark.clause("§8/keda")
def test_keda_bounds_are_sane_and_agree_with_pdb_and_values(platform: Any,
                                                            evidence: Any) -> None:
    spec = scaled_object(platform)["spec"]
    values = yaml.safe_load((platform.chart / "values.yaml").read_text())["autoscaling"]
    low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
    assert 1 <= low <= high, (low, high)
    pdbs = [p for p in manifests.by_kind(platform.rendered, "PodDisruptionBudget")
            if p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component")
            == "explainer"]
    assert pdbs, "no PDB for the explainer"
    assert low >= pdbs[0]["spec"]["minAvailable"], "KEDA may scale below the PDB"
    (trigger,) = spec["triggers"]
    threshold = float(trigger["metadata"]["threshold"])  # a number, not just text
    assert (low, high, threshold) == (values["minReplicaCount"], values["maxReplicaCount"],
                                      float(values["backlogSecondsTarget"]))
    assert (low, high, threshold) == (2, 16, 1.0), "CONTRACT §8: 2..16 at 1.0 s"
    evidence.record(min=low, max=high, threshold=threshold,
                    pdb_min_available=pdbs[0]["spec"]["minAvailable"])


@pytest.mark.clause("§8/keda")
def test_the_metric_keda_queries_is_emitted_with_its_labels(
        platform: Any, sidecar_target: Any, stack_factory: Any, metrics_factory: Any,
        sidecar_config: Any, evidence: Any) -> None:
    query = scaled_object(platform)["spec"]["triggers"][0]["metadata"]["query"]
    selectors = SELECTOR.findall(query)
    assert selectors, f"no metric selector in {query!r}"
    # The target's explainer when it publishes metrics, else a reference stack's.
    source = sidecar_target if "metrics:explainer" in sidecar_target.capabilities \
        else stack_factory()
    token = source.tenants["a"].tokens.write if source.tenants else None
    with SidecarClient(source.url, token, sidecar_config.timeout) as client:
        own = Traces(source, sidecar_config, lambda: client)
        for granularity in ("sentence", "token"):  # every granularity's series, for real
            own.finished(client, granularity=granularity)
    scrape = metrics_factory("explainer", source).scrape()
    checked = {}
    for metric, matchers in selectors:
        samples = scrape.select(metric)
        assert samples, f"the explainer does not emit {metric} (KEDA queries it)"
        for label, op, value in MATCHER.findall(matchers):
            present = {dict(s.labels).get(label) for s in samples}
            assert present - {None}, f"{metric} has no label {label}"
            if op in ("=", "=~"):
                wanted = value.split("|") if op == "=~" else [value]
                assert set(wanted) <= present, f"{metric}{{{label}}} lacks {wanted}"
        checked[metric] = len(samples)
    evidence.record(query=query, series=checked, scraped=source.metrics_explainer)


@pytest.mark.clause("§8/karpenter")
def test_karpenter_cpu_and_gpu_pools_reference_their_node_classes(platform: Any,
                                                                  evidence: Any) -> None:
    pools = {p["metadata"]["name"]: p for p in manifests.by_kind(platform.karpenter, "NodePool")}
    classes = {c["metadata"]["name"] for c in manifests.by_kind(platform.karpenter,
                                                                 "EC2NodeClass")}
    assert {"cpu", "gpu"} <= set(pools), sorted(pools)
    for name, pool in pools.items():
        ref = pool["spec"]["template"]["spec"]["nodeClassRef"]
        assert (ref["group"], ref["kind"]) == ("karpenter.k8s.aws", "EC2NodeClass"), ref
        assert ref["name"] in classes, f"NodePool {name} references a missing class {ref}"
    gpu = pools["gpu"]["spec"]
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
               for t in gpu["template"]["spec"].get("taints", [])), "the GPU pool is untainted"
    assert gpu.get("limits", {}).get("nvidia.com/gpu"), "the GPU pool has no GPU limit"
    evidence.record(pools=sorted(pools), classes=sorted(classes))


@pytest.mark.clause("§8/argocd")
def test_argocd_inline_values_satisfy_the_charts_schema(platform: Any, evidence: Any) -> None:
    import jsonschema

    (app,) = manifests.by_kind(platform.argocd, "Application")
    inline = app["spec"]["source"].get("helm", {}).get("valuesObject", {})
    defaults = yaml.safe_load((platform.chart / "values.yaml").read_text())
    schema = json.loads((platform.chart / "values.schema.json").read_text())

    def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(
                out.get(key), dict) else value
        return out

    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(
        merge(defaults, inline))]
    assert inline and not errors, errors or "no inline values to check"
    evidence.record(inline_keys=sorted(inline))
