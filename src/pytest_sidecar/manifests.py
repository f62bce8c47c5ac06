"""Deployment manifests: render the Helm chart, read YAML, validate every document.

Rendering uses the `helm` binary when it is on PATH, else helm-python-sdk (the `helm`
extra: Helm's Go SDK as a native library, no binary needed). Built-in kinds are validated
offline with kubernetes-validate; CRD kinds against the JSON Schemas in
`schemas/crds/` (each notes its source); a kind with neither is an error. No pytest here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

K8S_VERSION = "1.33"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.schema.json",
    ("karpenter.sh/v1", "NodePool"): "nodepool.schema.json",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "ec2nodeclass.schema.json",
    ("argoproj.io/v1alpha1", "Application"): "application.schema.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.schema.json",
}
INSTALL_HINT = "pip install 'pytest-sidecar[helm]'"

Manifest = dict[str, Any]


class ToolMissing(RuntimeError):
    """Neither the helm binary nor helm-python-sdk is available."""


class RenderError(RuntimeError):
    """The chart did not load, render or pass its values schema; the message says why."""


def renderer() -> str:
    """Which renderer this runner has: 'helm' (binary), 'helm-python-sdk', or raises
    ToolMissing (also when kubernetes-validate, needed to check the output, is absent)."""
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        raise ToolMissing(f"kubernetes-validate is not installed: {INSTALL_HINT}") from None
    if shutil.which("helm"):
        return "helm"
    try:
        import helm_python  # noqa: F401
    except ImportError:
        raise ToolMissing(f"no Helm renderer: {INSTALL_HINT}") from None
    return "helm-python-sdk"


def render_chart(chart: Path, values: dict[str, Any] | None = None,
                 release: str = "hypergraph", namespace: str = "hypergraph") -> list[Manifest]:
    """Render `chart` like `helm template` and return every non-empty document."""
    if renderer() == "helm":
        command = ["helm", "template", release, str(chart), "--namespace", namespace]
        if values:
            command += ["--values", "-"]
        done = subprocess.run(command, input=json.dumps(values or {}), capture_output=True,
                              text=True, timeout=120)
        if done.returncode:
            raise RenderError(done.stderr.strip() or "helm template failed")
        return documents(done.stdout)
    import helm_python as helm

    try:
        with helm.Chart.load(chart) as loaded:
            rendered = loaded.render(values or {}, name=release, namespace=namespace)
    except helm.HelmError as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in documents(text)]


def lint_chart(chart: Path) -> list[str]:
    """Lint errors (empty: the chart lints clean)."""
    if renderer() == "helm":
        done = subprocess.run(["helm", "lint", str(chart)], capture_output=True, text=True,
                              timeout=120)
        return [] if done.returncode == 0 else [done.stdout.strip() or done.stderr.strip()]
    import helm_python as helm

    report = helm.lint(str(chart))
    return [str(error) for error in report["errors"]]


def documents(text: str) -> list[Manifest]:
    """The YAML documents of a text, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_documents(path: Path) -> list[Manifest]:
    return documents(path.read_text(encoding="utf-8"))


@cache
def _crd_validator(filename: str) -> Any:
    import jsonschema

    text = resources.files("pytest_sidecar").joinpath(f"schemas/crds/{filename}").read_text()
    return jsonschema.Draft202012Validator(json.loads(text))


def validation_errors(doc: Manifest, allow_kinds: Iterable[str] = ()) -> list[str]:
    """Problems with one document: schema violations, or a kind nobody can validate."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    name = f"{kind}/{(doc.get('metadata') or {}).get('name', '?')}"
    if not api or not kind:
        return [f"{name}: apiVersion and kind are required"]
    crd = CRD_SCHEMAS.get((api, kind))
    if crd is not None:
        return [f"{name}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in _crd_validator(crd).iter_errors(doc)]
    import kubernetes_validate as kv

    try:
        kv.validate(doc, K8S_VERSION, strict=True)
    except kv.SchemaNotFoundError:
        if kind in allow_kinds:
            return []
        return [f"{name}: no schema for {api} {kind} (add one under schemas/crds/ or allow it)"]
    except kv.ValidationError as exc:
        return [f"{name}: {'.'.join(map(str, exc.path)) or '(root)'}: {exc.message}"]
    return []


def by_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc.get("kind") == kind]


def explainer_autoscaling(chart: Path) -> dict[str, Any]:
    """The explainer's KEDA replica range and workers per replica, from the rendered
    chart when a renderer is installed, else from values.yaml (said in `source`)."""
    try:
        docs = render_chart(chart)
        scaled = next(d for d in docs if d.get("kind") == "ScaledObject")
        config = next(d for d in docs if d.get("kind") == "ConfigMap"
                      and "EXPLAINER_WORKERS" in (d.get("data") or {}))
        return {"min": int(scaled["spec"]["minReplicaCount"]),
                "max": int(scaled["spec"]["maxReplicaCount"]),
                "workers_per_replica": int(config["data"]["EXPLAINER_WORKERS"]),
                "source": f"rendered chart {chart}"}
    except (ToolMissing, StopIteration):
        values = yaml.safe_load((chart / "values.yaml").read_text())
        return {"min": int(values["autoscaling"]["minReplicaCount"]),
                "max": int(values["autoscaling"]["maxReplicaCount"]),
                "workers_per_replica": int(values["config"]["EXPLAINER_WORKERS"]),
                "source": f"{chart / 'values.yaml'} (no Helm renderer installed)"}


ROLES = ("gateway", "explainer", "interceptor")


def role_of(deployment: Manifest) -> str | None:
    """Which Sidecar component a Deployment runs, found the way a reader would: the
    app.kubernetes.io/component label, else the name, else a container's name. Any chart
    layout works; ours is not assumed."""
    template = (deployment.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    names = [str(labels.get("app.kubernetes.io/component", "")),
             str((deployment.get("metadata") or {}).get("name", ""))]
    names += [str(c.get("name", "")) for c in (template.get("spec") or {}).get("containers", [])]
    for name in names:
        for role in ROLES:
            if role in name.lower():
                return role
    return None


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"].get("labels") or {}
    return labels


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """True when a label selector (matchLabels form, or a Service's plain map) matches."""
    if not selector:
        return False
    wanted = selector.get("matchLabels", selector) if "matchExpressions" not in selector \
        else selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def is_gpu_pool(pool: Manifest) -> bool:
    """A Karpenter NodePool that provisions GPU nodes: a GPU limit, taint or requirement."""
    text = json.dumps(pool.get("spec", {})).lower()
    return "nvidia.com/gpu" in text or "accelerator" in text or '"gpu"' in text
