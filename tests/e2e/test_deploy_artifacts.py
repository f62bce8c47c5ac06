"""Deployment artifacts (CONTRACT §8) on any chart layout: the chart lints and renders into
valid documents; the gateway and explainer run as Deployments with Services; their probes
hit routes those processes really serve; PDBs select real pods; NetworkPolicies deny by
default with explicit allows; the ArgoCD Application points at the chart.

Objects are found by kind and reference, never by our chart's values keys. What §8 does
not require (non-root containers, resource limits, sync options) is an advisory in the
report, not a failure.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from pytest_sidecar import Evidence, manifests
from pytest_sidecar.contracts.routes import ROUTE_NEEDS
from pytest_sidecar.fixtures.platform import Platform
from pytest_sidecar.stack.settings import ENV_VARS
from pytest_sidecar.target import Target
from pytest_sidecar.tls import tls_context

pytestmark = [pytest.mark.platform, pytest.mark.profile("platform")]

REQUIRED_ROLES = ("gateway", "explainer")
# The explainer's own HTTP surface the contract names (§1: its /metrics), plus the
# health routes a process conventionally serves; checked live when the target shares the
# explainer's URL.
EXPLAINER_ROUTES = {"/metrics"}


def deployments(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in manifests.by_kind(platform.rendered, "Deployment"):
        role = manifests.role_of(doc)
        if role:
            found.setdefault(role, []).append(doc)
    return found


def served(role: str, path: str, target: Target) -> bool | None:
    """Does the role's process serve `path`? True/False when known, None when not."""
    if role == "gateway":
        return path in {p for m, p in ROUTE_NEEDS if m == "GET"}
    base = (target.metrics_explainer or "").removesuffix("/metrics")
    if role == "explainer" and base:
        try:
            status = httpx.get(base + path, timeout=5, verify=tls_context()).status_code
            return status not in (404, 405)
        except httpx.HTTPError:
            return None
    return True if role == "explainer" and path in EXPLAINER_ROUTES else None


@pytest.mark.clause("§8/chart")
def test_the_chart_lints_and_every_document_validates(platform: Platform,
                                                      evidence: Evidence) -> None:
    assert manifests.lint_chart(platform.chart) == [], "§8: helm lint reports problems"
    chart_meta = yaml.safe_load((platform.chart / "Chart.yaml").read_text())
    assert chart_meta.get("apiVersion") == "v2" and chart_meta.get("version"), (
        f"§8: Chart.yaml {chart_meta}")
    docs = [*platform.rendered, *platform.argocd, *platform.karpenter]
    problems = [p for doc in docs for p in manifests.validation_errors(doc)]
    assert not problems, f"§8: {problems}"
    # §8 asks nothing of ConfigMap keys; one the reference stack does not read is said
    # (another implementation may read settings ours does not), never judged.
    maps = manifests.by_kind(platform.rendered, "ConfigMap")
    keys = sorted({key for config in maps for key in (config.get("data") or {})})
    for key in (key for key in keys if key.isupper() and key not in ENV_VARS):
        evidence.advise(f"ConfigMap key {key} is not a setting the reference stack reads")
    evidence.record(renderer=platform.renderer, documents=len(docs),
                    kinds=sorted({d["kind"] for d in docs}), configmap_keys=keys)


@pytest.mark.clause("§8/deployments")
def test_the_gateway_and_explainer_run_as_deployments_with_services(
        platform: Platform, evidence: Evidence) -> None:
    found = deployments(platform)
    missing = [role for role in REQUIRED_ROLES if role not in found]
    names = [d["metadata"]["name"] for d in manifests.by_kind(platform.rendered, "Deployment")]
    assert not missing, f"§8: no Deployment for {missing} (found {names})"
    services = manifests.by_kind(platform.rendered, "Service")
    fronted = {}
    for role in REQUIRED_ROLES:
        names = [s["metadata"]["name"] for s in services for d in found[role]
                 if manifests.selects(s["spec"].get("selector"), manifests.pod_labels(d))]
        assert names, f"§8: no Service selects the {role}'s pods"
        fronted[role] = names
    if "interceptor" not in found:
        evidence.advise("§8 lists an interceptor Deployment; this chart has none")
    evidence.record(deployments={r: [d["metadata"]["name"] for d in ds]
                                 for r, ds in found.items()}, services=fronted)


@pytest.mark.clause("§8/probes")
def test_every_container_probes_a_route_its_process_serves(platform: Platform,
                                                           sidecar_target: Target,
                                                           evidence: Evidence) -> None:
    seen = {}
    for role, docs in deployments(platform).items():
        for deployment in docs:
            containers = deployment["spec"]["template"]["spec"]["containers"]
            probed = [c for c in containers if c.get("livenessProbe") and c.get("readinessProbe")]
            assert probed, f"§8: the {role} has no container with liveness and readiness probes"
            for container in containers:
                for probe in ("livenessProbe", "readinessProbe"):
                    http = (container.get(probe) or {}).get("httpGet")
                    if not http:
                        continue
                    ok = served(role, http["path"], sidecar_target)
                    assert ok is not False, (
                        f"§8: the {role}'s {probe} is on {http['path']}, which it does not serve")
                    if ok is None:
                        evidence.advise(f"{role} {probe} on {http['path']}: not verifiable here")
                    seen[f"{role}.{container['name']}.{probe}"] = http["path"]
                security = container.get("securityContext") or {}
                if security.get("runAsNonRoot") is not True:
                    evidence.advise(f"{role}/{container['name']} may run as root")
                if not (container.get("resources") or {}).get("limits"):
                    evidence.advise(f"{role}/{container['name']} has no resource limits")
    evidence.record(probes=seen)


@pytest.mark.clause("§8/pdb")
def test_pod_disruption_budgets_select_real_pods(platform: Platform, evidence: Evidence) -> None:
    pods = [manifests.pod_labels(d) for d in manifests.by_kind(platform.rendered, "Deployment")]
    budgets = manifests.by_kind(platform.rendered, "PodDisruptionBudget")
    assert budgets, "§8: no PodDisruptionBudget"
    matched = {}
    for pdb in budgets:
        selector = pdb["spec"].get("selector") or {}
        hits = [labels for labels in pods if manifests.selects(selector, labels)]
        assert hits, f"§8: PDB {pdb['metadata']['name']} selects no pod: {selector}"
        matched[pdb["metadata"]["name"]] = len(hits)
    covered = {manifests.role_of(d) for d in manifests.by_kind(platform.rendered, "Deployment")
               if any(manifests.selects(p["spec"].get("selector"), manifests.pod_labels(d))
                      for p in budgets)}
    for role in REQUIRED_ROLES:
        if role not in covered:
            evidence.advise(f"no PodDisruptionBudget covers the {role}")
    evidence.record(pdbs=matched)


@pytest.mark.clause("§8/network-policies")
def test_network_policies_deny_by_default_and_never_allow_all(platform: Platform,
                                                              evidence: Evidence) -> None:
    policies = manifests.by_kind(platform.rendered, "NetworkPolicy")
    # Default deny per direction: a policy over every pod (empty podSelector) that names
    # the direction and allows nothing in it; one policy or two.
    deny = {direction: [p["metadata"]["name"] for p in policies
                        if p["spec"].get("podSelector") == {}
                        and direction.capitalize() in p["spec"].get("policyTypes", [])
                        and not p["spec"].get(direction)]
            for direction in ("ingress", "egress")}
    missing = [direction for direction, names in deny.items() if not names]
    assert not missing, f"§8: no default-deny NetworkPolicy for {missing}"
    for policy in policies:
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction) or []:
                peers = rule.get(peer_key)
                assert peers, f"§8: {policy['metadata']['name']}: an {direction} rule allows all"
                assert all(peer for peer in peers), (
                    f"§8: {policy['metadata']['name']}: an empty {direction} peer allows all")
    evidence.record(policies=len(policies), default_deny=deny)


@pytest.mark.clause("§8/argocd")
def test_the_argocd_application_points_at_the_chart(platform: Platform, evidence: Evidence) -> None:
    apps = manifests.by_kind(platform.argocd, "Application")
    assert apps, "§8: no ArgoCD Application in argocd-apps.yaml"
    sources = [s for app in apps
               for s in (app["spec"].get("source"), *(app["spec"].get("sources") or [])) if s]
    charts = [s for s in sources if s.get("path") and
              (platform.root.parent / s["path"] / "Chart.yaml").is_file()]
    assert charts, f"§8: no Application source points at the chart ({sources})"
    sync = apps[0]["spec"].get("syncPolicy") or {}
    if (sync.get("automated") or {}) != {"prune": True, "selfHeal": True}:
        evidence.advise("the Application does not prune and self-heal automatically")
    evidence.record(applications=len(apps), path=charts[0]["path"])
