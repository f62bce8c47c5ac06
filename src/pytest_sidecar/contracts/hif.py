"""HIF validation: the JSON Schemas (v1 graph, v2 envelope) plus the invariants of §4
that a schema cannot express (unique ids, no dangling ids, limits, granularity)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .timestamps import timestamp_error


@cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = json.loads(resources.files(__package__).joinpath(name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_errors(name: str, doc: Any) -> list[str]:
    errors = sorted(_validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def schema_errors_v1(doc: Any) -> list[str]:
    """HIF v1 schema violations, one line each (empty when valid)."""
    return _schema_errors("hif_v1.schema.json", doc)


def schema_errors_v2(doc: Any) -> list[str]:
    """HIF v2 envelope schema violations, one line each (empty when valid)."""
    return _schema_errors("hif_v2.schema.json", doc)


def invariant_errors(doc: dict[str, Any], *, granularity: str | None = None,
                     granularity_downgraded: bool = False,
                     output_tokens: int | None = None) -> list[str]:
    """Violations of the §4 invariants for a schema-valid HIF v1 document.

    granularity: the trace's status granularity; output_tokens: the completion's
    `usage.completion_tokens` (token granularity needs one output_token per token).
    """
    errors: list[str] = []
    nodes, incidences, meta = doc["nodes"], doc["incidences"], doc["meta"]
    for kind, items in (("node", nodes), ("incidence", incidences)):
        seen: set[str] = set()
        for item in items:
            if item["id"] in seen:
                errors.append(f"duplicate {kind} id {item['id']!r}")
            seen.add(item["id"])
        for item in items:
            nulls = [key for key, value in item.items() if value is None]
            if nulls:
                errors.append(f"{kind} {item['id']!r} has null {', '.join(nulls)}")
    node_ids = {node["id"] for node in nodes}
    for inc in incidences:
        dangling = [nid for nid in inc["node_ids"] if nid not in node_ids]
        if dangling:
            errors.append(f"incidence {inc['id']!r} names unknown nodes {dangling[:3]}")
        if len(set(inc["node_ids"])) < 2:
            errors.append(f"incidence {inc['id']!r} joins fewer than 2 distinct nodes")
    limits = meta.get("limits", {})
    min_w = limits.get("min_edge_weight", 0.01)
    light = [inc["id"] for inc in incidences if inc["weight"] < min_w]
    if light:
        errors.append(f"{len(light)} incidences below min_edge_weight {min_w}: {light[:3]}")
    if len(nodes) > limits.get("max_nodes", 5000):
        errors.append(f"{len(nodes)} nodes over max_nodes {limits.get('max_nodes', 5000)}")
    if len(incidences) > limits.get("max_incidences", 20000):
        errors.append(f"{len(incidences)} incidences over max_incidences "
                      f"{limits.get('max_incidences', 20000)}")
    stamp = timestamp_error("meta.created_at", meta["created_at"]) \
        if "created_at" in meta else None
    errors += [stamp] if stamp else []
    if granularity is not None and meta.get("granularity") != granularity \
            and not granularity_downgraded:
        errors.append(f"meta.granularity {meta.get('granularity')!r} != status "
                      f"granularity {granularity!r} and granularity_downgraded is false")
    if meta.get("granularity") == "token" and output_tokens is not None:
        outputs = [n for n in nodes if n["type"] == "output_token"]
        if len(outputs) != output_tokens:
            errors.append(f"{len(outputs)} output_token nodes for {output_tokens} output tokens")
        # `position` is optional (§4): judged only where the graph gives it.
        positions = [n["position"] for n in outputs if "position" in n]
        if len(set(positions)) != len(positions) or \
                not all(0 <= p < len(outputs) for p in positions):
            errors.append("output_token positions are not within 0..n-1, each once")
    return errors


class HifValidator:
    """Validates HIF documents: JSON Schema first, then the §4 invariants; each method
    returns the list of problems (empty when the document is valid)."""

    def errors_v1(self, doc: Any, **context: Any) -> list[str]:
        """All problems of a HIF v1 graph; context: granularity, granularity_downgraded,
        output_tokens (see invariant_errors)."""
        errors = schema_errors_v1(doc)
        return errors or invariant_errors(doc, **context)

    def errors_v2(self, doc: Any) -> list[str]:
        """The JSON Schema problems of a HIF v2 document."""
        return schema_errors_v2(doc)
