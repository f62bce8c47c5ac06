"""Deployment artifacts (CONTRACT §8): the chart lints and renders into valid documents;
probes hit routes their processes serve; PDBs select real pods; NetworkPolicies deny by
default; the ArgoCD Application points at the chart."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pytest_sidecar import manifests
from pytest_sidecar.contracts.openapi import documented_routes
from pytest_sidecar.stack.settings import ENV_VARS

pytestmark = [pytest.mark.platform, pytest.mark.profile("platform"),
              pytest.mark.contract("§8")]

EXPECTED = {"Deployment": 2, "Service": 2, "PodDisruptionBudget": 2, "NetworkPolicy": 1,
            "ScaledObject": 1, "ConfigMap": 1}


def served_paths(component: str) -> set[str]:
    """GET routes each process really serves: the gateway's documented operational and API
    routes; the explainer's own app (its /healthz and /metrics)."""
    if component == "gateway":
        return {path for method, path in documented_routes() if method == "GET"}
    from pytest_sidecar.stack.gateway import create_explainer_app

    return {route.path for route in create_explainer_app(None).routes}  # type: ignore[arg-type]


def component_of(doc: dict[str, Any]) -> str:
    return doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


@pytest.mark.clause("§8/chart")
def test_the_chart_lints_and_every_document_validates(platform: Any, evidence: Any) -> None:
    assert manifests.lint_chart(platform.chart) == []
    chart_meta = yaml.safe_load((platform.chart / "Chart.yaml").read_text())
    assert chart_meta["apiVersion"] == "v2" and chart_meta["version"]
    docs = [*platform.rendered, *platform.argocd, *platform.karpenter]
    problems = [p for doc in docs for p in manifests.validation_errors(doc)]
    assert not problems, problems
    evidence.record(renderer=platform.renderer, documents=len(docs),
                    kinds=sorted({d["kind"] for d in docs}))


@pytest.mark.clause("§8/deployments")
def test_the_expected_kinds_are_rendered(platform: Any, evidence: Any) -> None:
    counts = {kind: len(manifests.by_kind(platform.rendered, kind)) for kind in EXPECTED}
    short = {kind: n for kind, n in counts.items() if n < EXPECTED[kind]}
    assert not short, f"missing: {short}"
    evidence.record(counts=counts)


@pytest.mark.clause("§8/probes")
def test_every_container_probes_a_route_its_process_serves(platform: Any,
                                                           evidence: Any) -> None:
    seen = {}
    for deployment in manifests.by_kind(platform.rendered, "Deployment"):
        component = component_of(deployment)
        serves = served_paths(component)
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            ports = {p.get("name") for p in container.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                http = container.get(probe, {}).get("httpGet")
                assert http, f"{component}/{container['name']} has no {probe} httpGet"
                assert http["path"] in serves, (
                    f"{component} {probe} on {http['path']}, which it does not serve "
                    f"(it serves {sorted(serves)})")
                assert http["port"] in ports or isinstance(http["port"], int), http
                seen[f"{component}.{probe}"] = http["path"]
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), component
            security = container.get("securityContext", {})
            assert security.get("runAsNonRoot") is True, f"{component} may run as root"
            assert security.get("readOnlyRootFilesystem") is True, component
    evidence.record(probes=seen)


@pytest.mark.clause("§8/pdb")
def test_pod_disruption_budgets_select_real_pods(platform: Any, evidence: Any) -> None:
    pod_labels = [d["spec"]["template"]["metadata"]["labels"]
                  for d in manifests.by_kind(platform.rendered, "Deployment")]
    matched = {}
    for pdb in manifests.by_kind(platform.rendered, "PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"]
        hits = [labels for labels in pod_labels if wanted.items() <= labels.items()]
        assert hits, f"PDB {pdb['metadata']['name']} selects no pod: {wanted}"
        matched[pdb["metadata"]["name"]] = len(hits)
    evidence.record(pdbs=matched)


@pytest.mark.clause("§8/network-policies")
def test_network_policies_deny_by_default_and_never_allow_all(platform: Any,
                                                              evidence: Any) -> None:
    policies = manifests.by_kind(platform.rendered, "NetworkPolicy")
    deny = [p for p in policies if p["spec"].get("podSelector") == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no default-deny NetworkPolicy"
    for policy in policies:
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                peers = rule.get(peer_key)
                assert peers, f"{policy['metadata']['name']}: an {direction} rule allows all"
                assert all(peer for peer in peers), f"{policy['metadata']['name']}: empty peer"
    evidence.record(policies=len(policies), default_deny=deny[0]["metadata"]["name"])


@pytest.mark.clause("§8/chart")
def test_the_configmap_sets_only_what_the_code_reads(platform: Any, evidence: Any) -> None:
    (config,) = [c for c in manifests.by_kind(platform.rendered, "ConfigMap")
                 if c["metadata"]["name"].endswith("-config")]
    unknown = sorted(set(config["data"]) - set(ENV_VARS))
    assert not unknown, f"the Sidecar reads none of {unknown}"
    evidence.record(keys=sorted(config["data"]))


@pytest.mark.clause("§8/argocd")
def test_the_argocd_application_points_at_the_chart(platform: Any, evidence: Any) -> None:
    (app,) = manifests.by_kind(platform.argocd, "Application")
    source, sync = app["spec"]["source"], app["spec"]["syncPolicy"]
    chart = platform.root.parent / source["path"]
    assert (chart / "Chart.yaml").is_file(), f"{source['path']} is not a chart in this repo"
    assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in sync.get("syncOptions", [])
    evidence.record(path=source["path"], automated=sync["automated"])
