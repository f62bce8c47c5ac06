"""The read-only §9 routes' work, over the project's own libraries: manifests (Helm,
Argo CD, KEDA, Karpenter), contracts (OpenAPI, HIF), metrics (scrape and lint) and the
PII scrubber. Each function returns a JSON-ready dict; none changes anything."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

AUDIT_READ_BYTES = 4 * 1024 * 1024  # audit search reads at most the last 4 MiB
AUDIT_MAX_RESULTS = 200
NEVER_SCRUBBED = ("ts", "trace_id", "request_id", "event", "service", "status", "path",
                  "method", "tenant_id")


def _yaml_docs(directory: Path) -> list[dict[str, Any]]:
    from ..manifests import load_documents

    return [doc for path in sorted(directory.glob("*.y*ml")) for doc in load_documents(path)]


def helm_checks(manifests: str) -> dict[str, Any]:
    """The chart rendered and every document schema-validated (or why not)."""
    from ..manifests import RenderError, ToolMissing, render_chart, renderer, validation_errors

    chart = Path(manifests) / "helm" / "hypergraph"
    if not (chart / "Chart.yaml").is_file():
        return {"chart": str(chart), "ok": False, "problems": ["no Chart.yaml"]}
    try:
        used = renderer()
        docs = render_chart(chart)
    except ToolMissing as exc:
        return {"chart": str(chart), "ok": None, "renderer": None, "reason": str(exc)}
    except RenderError as exc:
        return {"chart": str(chart), "ok": False, "renderer": used, "problems": [str(exc)]}
    problems = [p for doc in docs for p in validation_errors(doc)]
    kinds: dict[str, int] = {}
    for doc in docs:
        kinds[str(doc.get("kind"))] = kinds.get(str(doc.get("kind")), 0) + 1
    return {"chart": str(chart), "renderer": used, "ok": not problems, "documents": len(docs),
            "kinds": kinds, "problems": problems}


def argocd_apps(manifests: str) -> dict[str, Any]:
    apps = [doc for doc in _yaml_docs(Path(manifests) / "argocd")
            if doc.get("kind") in ("Application", "ApplicationSet")]
    return {"apps": [{"kind": a["kind"], "name": (a.get("metadata") or {}).get("name"),
                      "source": (a.get("spec") or {}).get("source"),
                      "destination": (a.get("spec") or {}).get("destination"),
                      "sync_policy": (a.get("spec") or {}).get("syncPolicy")} for a in apps]}


def keda_scalers(manifests: str) -> dict[str, Any]:
    from ..manifests import RenderError, ToolMissing, explainer_autoscaling

    try:
        return {"explainer": explainer_autoscaling(Path(manifests) / "helm" / "hypergraph")}
    except (ToolMissing, RenderError, OSError, KeyError, StopIteration) as exc:
        return {"explainer": None, "reason": f"{type(exc).__name__}: {exc}"}


def karpenter_nodepools(manifests: str) -> dict[str, Any]:
    from ..manifests import is_gpu_pool

    docs = _yaml_docs(Path(manifests) / "karpenter")
    pools = [d for d in docs if d.get("kind") == "NodePool"]
    classes = [d for d in docs if d.get("kind") == "EC2NodeClass"]
    return {"nodepools": [{"name": (p.get("metadata") or {}).get("name"), "gpu": is_gpu_pool(p)}
                          for p in pools],
            "nodeclasses": [(c.get("metadata") or {}).get("name") for c in classes],
            "has_cpu_pool": any(not is_gpu_pool(p) for p in pools),
            "has_gpu_pool": any(is_gpu_pool(p) for p in pools)}


def openapi_check() -> dict[str, Any]:
    """The shipped API document: valid OpenAPI, and every path under /v1."""
    from openapi_spec_validator import validate

    from ..contracts.openapi import load_openapi

    document = load_openapi()
    problems = []
    try:
        validate(document)
    except Exception as exc:  # the validator raises several types; all are findings
        problems.append(f"not valid OpenAPI: {str(exc).splitlines()[0]}")
    outside = sorted(p for p in document.get("paths", {}) if not p.startswith("/v1/"))
    problems += [f"path outside /v1: {p}" for p in outside]
    return {"ok": not problems, "paths": len(document.get("paths", {})), "problems": problems}


def hif_validate(document: Any) -> dict[str, Any]:
    from ..contracts.hif import invariant_errors, schema_errors_v1, schema_errors_v2

    if not isinstance(document, dict):
        return {"valid": False, "version": None, "errors": ["a HIF document is a JSON object"]}
    v2 = "hyperedges" in document and "incidences" not in document
    errors = (schema_errors_v2 if v2 else schema_errors_v1)(document)
    if not errors and not v2:
        errors = invariant_errors(document)
    return {"valid": not errors, "version": "v2" if v2 else "v1", "errors": errors[:50]}


def audit_search(path: str | None, filters: Mapping[str, str], limit: int) -> dict[str, Any]:
    """Newest-first audit lines matching every filter (field equality, or `q` as a
    substring), at most `limit` (≤ 200), read from the end of the configured file only,
    scrubbed again on the way out."""
    from ..contracts.pii import scrub

    if not path:
        return {"configured": False, "lines": []}
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            handle.seek(max(0, size - AUDIT_READ_BYTES))
            raw = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError as exc:
        return {"configured": True, "lines": [], "reason": exc.strerror}
    if size > AUDIT_READ_BYTES:
        raw = raw[1:]  # the first line is cut
    query = filters.get("q")
    found = []
    for line in reversed(raw):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if any(str(record.get(k)) != v for k, v in filters.items() if k != "q"):
            continue
        if query and query not in line:
            continue
        found.append({k: v if k in NEVER_SCRUBBED or not isinstance(v, str) else scrub(v)
                      for k, v in record.items()})
        if len(found) >= min(limit, AUDIT_MAX_RESULTS):
            break
    return {"configured": True, "lines": found, "scanned_bytes": min(size, AUDIT_READ_BYTES)}


def metrics_aggregate(endpoints: Iterable[tuple[str, str]], timeout: float = 5.0
                      ) -> dict[str, Any]:
    """Scrape each (name, url) the control plane was configured with: families, series,
    lint problems, or the error."""
    from ..metrics import lint, scrape

    summary = []
    for name, url in endpoints:
        try:
            scraped = scrape(url, timeout)
        except Exception as exc:  # a target down is data for the dashboard
            summary.append({"endpoint": name, "url": url, "ok": False,
                            "error": type(exc).__name__})
            continue
        summary.append({"endpoint": name, "url": url, "ok": True,
                        "families": len(scraped.types), "samples": len(scraped.samples),
                        "problems": lint(scraped)[:20]})
    return {"endpoints": summary}
