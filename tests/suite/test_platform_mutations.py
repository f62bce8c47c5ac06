"""Each defect of the seed's manifests, re-introduced into a copy, makes a platform spec
fail (and the unmodified copy passes)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPECS = [str(REPO / "tests" / "e2e" / name)
         for name in ("test_deploy_artifacts.py", "test_autoscaling_policies.py")]
CHART = Path("manifests/helm/hypergraph")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def invalid_chart_yaml(root: Path) -> None:
    (root / CHART / "Chart.yaml").write_text("apiVersion: v2\nname: [hypergraph\nversion: 1\n")


def probe_on_a_missing_route(root: Path) -> None:
    edit(root / CHART / "templates" / "gateway.yaml", "path: /readyz", "path: /ready")


def allow_all_network_policy(root: Path) -> None:
    (root / CHART / "templates" / "allow-all.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all}\n"
        "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n    - {}\n")


def keda_on_an_unemitted_metric(root: Path) -> None:
    edit(root / CHART / "templates" / "keda-scalers.yaml",
         'max(hypergraph_backlog_seconds{granularity=~"sentence|token"})',
         'sum(explainer_queue_backlog{lane="explain"})')


MUTATIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "invalid Chart.yaml": (invalid_chart_yaml, "lints_and_every_document"),
    "probe on a missing route": (probe_on_a_missing_route, "probes_a_route"),
    "allow-all NetworkPolicy": (allow_all_network_policy, "never_allow_all"),
    "KEDA on an unemitted metric": (keda_on_an_unemitted_metric, "emitted_with_its_labels"),
}


def run(pytester: pytest.Pytester, mutate: Callable[[Path], None] | None,
        select: str) -> dict[str, str]:
    copy = pytester.path / "copy"
    shutil.copytree(REPO / "manifests", copy / "manifests")
    if mutate:
        mutate(copy)
    pytester.runpytest_subprocess(*SPECS, f"--sidecar-manifests={copy / 'manifests'}",
                                  "-k", select, "-p", "no:cacheprovider", timeout=180)
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    return {r["name"]: r["outcome"] for r in report["results"]}


def test_the_manifests_as_committed_pass(pytester: pytest.Pytester) -> None:
    outcomes = run(pytester, None, "not emitted_with_its_labels")
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes


@pytest.mark.parametrize("defect", list(MUTATIONS))
def test_each_seed_defect_is_caught(defect: str, pytester: pytest.Pytester) -> None:
    mutate, spec = MUTATIONS[defect]
    outcomes = run(pytester, mutate, spec)
    caught = {name: outcome for name, outcome in outcomes.items() if spec in name}
    assert caught and set(caught.values()) <= {"failed", "error"}, (defect, outcomes)


def another_chart_layout(root: Path) -> None:
    """Right but built differently: other pool and ConfigMap names, no values schema."""
    pools = root / "manifests" / "karpenter" / "karpenter-provisioners.yaml"
    pools.write_text(pools.read_text().replace("name: cpu", "name: general")
                     .replace("name: gpu", "name: accelerated"))
    (root / CHART / "values.schema.json").unlink()
    for template in ("configmap.yaml", "gateway.yaml", "explainer.yaml"):
        path = root / CHART / "templates" / template
        path.write_text(path.read_text().replace("-config", "-settings"))


def test_a_chart_built_differently_passes(pytester: pytest.Pytester) -> None:
    outcomes = run(pytester, another_chart_layout, "not emitted_with_its_labels")
    # Without values.schema.json the inline ArgoCD values have nothing to be judged by:
    # that one spec is NOT_DECLARED (never a pass over nothing); everything else passes.
    unjudged = "test_argocd_inline_values_satisfy_the_charts_schema"
    assert outcomes.pop(unjudged) == "skipped", outcomes
    assert outcomes and set(outcomes.values()) == {"passed"}, outcomes
    report = json.loads((pytester.path / "reports" / "latest" / "sidecar-report.json").read_text())
    (skipped,) = [r for r in report["results"] if unjudged in r["nodeid"]]
    assert skipped["reason_code"] == "NOT_DECLARED" and "values.schema.json" in skipped["reason"]


def test_without_a_renderer_the_platform_specs_skip_typed(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shim = pytester.path / "shim"
    for package in ("helm_python", "kubernetes_validate"):
        (shim / package).mkdir(parents=True)
        (shim / package / "__init__.py").write_text(f"raise ImportError('{package}')\n")
    monkeypatch.setenv("PYTHONPATH", str(shim))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # and no helm binary
    result = pytester.runpytest_subprocess(*SPECS, "-p", "no:cacheprovider", "-rs",
                                           timeout=120)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes.get("skipped", 0) >= 10, outcomes
    result.stdout.fnmatch_lines(["*TOOL_MISSING: kubernetes-validate is not installed; action: "
                                 "pip install 'pytest-sidecar*"])
