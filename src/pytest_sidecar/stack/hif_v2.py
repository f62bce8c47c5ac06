"""The HIF v2 envelope (CONTRACT §2.9) derived from a HIF v1 graph.

Concepts are the v1 SAE features; outputs are the v1 output units (tokens or sentence
supernodes); each v1 incidence becomes a hyperedge from its concepts to its output.
"""

from __future__ import annotations

from typing import Any

_OUTPUT_TYPES = ("output_token", "circuit_supernode")
_INTERACTIONS = ("SYNERGY", "REDUNDANCY", "SUPPRESSION")


def envelope(completion_id: str, model: str, created_at: str,
             graph: dict[str, Any]) -> dict[str, Any]:
    nodes = {node["id"]: node for node in graph["nodes"]}
    v2_nodes = []
    for node in graph["nodes"]:
        if node["type"] == "sae_feature":
            v2_nodes.append({"id": node["id"], "type": "CONCEPT", "text": node.get("label", "")})
        elif node["type"] in _OUTPUT_TYPES:
            position = node.get("position", 0)
            v2_nodes.append({"id": node["id"], "type": "OUTPUT", "text": node.get("label", ""),
                             "span": [position, position + 1]})
    edges = []
    for inc in graph["incidences"]:
        known = [nodes[n] for n in inc["node_ids"] if n in nodes]  # v1 invariants are §4's
        outputs = [n["id"] for n in known if n["type"] in _OUTPUT_TYPES]
        concepts = [n["id"] for n in known if n["type"] == "sae_feature"]
        if not outputs or not concepts:
            continue
        edges.append({"id": inc["id"], "source_nodes": concepts, "target_node": outputs[0],
                      "weight": inc["weight"],
                      # Deterministic, derived from the weight band.
                      "interaction_type": _INTERACTIONS[min(2, int(inc["weight"] * 3))]})
    return {"id": completion_id, "status": "completed", "model": model,
            "created_at": created_at, "hypergraph": {"nodes": v2_nodes, "hyperedges": edges}}
