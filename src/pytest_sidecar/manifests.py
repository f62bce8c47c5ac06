"""Deployment manifests: render the Helm chart, read YAML, validate every document.

Rendering uses the `helm` binary when it is on PATH, else helm-python-sdk (the `helm`
extra: Helm's Go SDK as a native library, no binary needed). Built-in kinds are validated
offline with kubernetes-validate; CRD kinds against the JSON Schemas in
`schemas/crds/` (each notes its source); a kind with neither is an error. No pytest here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import SidecarError

K8S_VERSION = "1.33"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.schema.json",
    ("karpenter.sh/v1", "NodePool"): "nodepool.schema.json",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "ec2nodeclass.schema.json",
    ("argoproj.io/v1alpha1", "Application"): "application.schema.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.schema.json",
    ("chaos-mesh.org/v1alpha1", "HTTPChaos"): "httpchaos.schema.json",
    ("chaos-mesh.org/v1alpha1", "PodChaos"): "podchaos.schema.json",
}
INSTALL_HINT = "pip install 'pytest-sidecar[helm]'"

Manifest = dict[str, Any]


class ToolMissing(SidecarError, RuntimeError):
    """Neither the helm binary nor helm-python-sdk is available."""


class RenderError(SidecarError, RuntimeError):
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


def gateway_replicas(chart: Path) -> dict[str, Any]:
    """The gateway's replica count: its Deployment's spec.replicas in the rendered chart
    (found by role, any layout), else values.yaml's gateway.replicas (said in `source`).
    With a HorizontalPodAutoscaler on it, its minReplicas: what serves before scaling out
    (the planned rate must not wait for new pods); `autoscaled` gives the range."""
    try:
        docs = render_chart(chart)
        gateway = next(d for d in docs if d.get("kind") == "Deployment"
                       and role_of(d) == "gateway")
        name = (gateway.get("metadata") or {}).get("name")
        scaled = [d.get("spec") or {} for d in docs
                  if d.get("kind") == "HorizontalPodAutoscaler"
                  and ((d.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name]
        if scaled:
            low, high = int(scaled[0].get("minReplicas", 1)), int(scaled[0]["maxReplicas"])
            return {"replicas": low, "autoscaled": [low, high],
                    "source": f"rendered chart {chart} (HPA minReplicas)"}
        return {"replicas": int((gateway.get("spec") or {}).get("replicas", 1)),
                "autoscaled": None, "source": f"rendered chart {chart}"}
    except (ToolMissing, StopIteration):
        values = yaml.safe_load((chart / "values.yaml").read_text())
        return {"replicas": int((values.get("gateway") or {}).get("replicas", 1)),
                "autoscaled": None,
                "source": f"{chart / 'values.yaml'} (no Helm renderer installed)"}


ROLES = ("gateway", "explainer", "interceptor")


def role_of(deployment: Manifest) -> str | None:
    """Which Sidecar component a Deployment runs, found the way a reader would: the
    app.kubernetes.io/component label, else the name, else a container's name, matched
    as a whole word (`hypergraph-gateway` is the gateway, `istio-ingressgateway` is not).
    Any chart layout works; ours is not assumed."""
    template = (deployment.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    names = [str(labels.get("app.kubernetes.io/component", "")),
             str((deployment.get("metadata") or {}).get("name", ""))]
    names += [str(c.get("name", "")) for c in (template.get("spec") or {}).get("containers", [])]
    for name in names:
        words = set(re.split(r"[^a-z0-9]+", name.lower()))
        for role in ROLES:
            if role in words:
                return role
    return None


def pod_labels(deployment: Manifest) -> dict[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    labels: dict[str, str] = (template.get("metadata") or {}).get("labels") or {}
    return labels


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """True when a label selector matches: a Service's plain map, or a LabelSelector with
    matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist). An empty selector
    selects nothing here (a PDB or Service over every pod is no target of one role)."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        held = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                "Exists": key in labels, "DoesNotExist": key not in labels}.get(operator)
        if not held:
            return False
    return True


GPU_RESOURCE = "nvidia.com/gpu"


def is_gpu_pool(pool: Manifest) -> bool:
    """A Karpenter NodePool that provisions GPU nodes: a GPU limit or taint, or a
    requirement that selects GPU instances (a GPU count above 0, a GPU instance
    category or family); a requirement that excludes them does not count."""
    spec = pool.get("spec") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    if GPU_RESOURCE in (spec.get("limits") or {}):
        return True
    if any(t.get("key") == GPU_RESOURCE for t in template.get("taints") or []):
        return True
    for requirement in template.get("requirements") or []:
        key, operator = str(requirement.get("key", "")), requirement.get("operator")
        values = [str(v) for v in requirement.get("values") or []]
        if key.endswith("instance-gpu-count") and operator == "Gt":
            return True
        if key.endswith(("instance-gpu-name", "instance-gpu-manufacturer")) and \
                operator in ("In", "Exists"):
            return True
        if key.endswith("instance-category") and operator == "In" and \
                set(values) & {"g", "p", "inf", "trn"}:
            return True
    return False
