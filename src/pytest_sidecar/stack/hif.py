"""Builds HIF v1 graphs (CONTRACT §4), deterministic for a given completion.

The graph is a stand-in for real attribution: features and weights come from a PRNG
seeded by (model, featureset, granularity, prompt, completion), so the same completion
always gives the same graph, and every invariant of §4 holds by construction.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from .text import seed_of, sentences, tokenize

DEFAULT_LIMITS = {"min_edge_weight": 0.01, "max_nodes": 5000, "max_incidences": 20000}
_MAX_INPUT_TOKENS = 32
_FEATURES_PER_UNIT = 2


def model_hash(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:12]


def build_hif(*, prompt: str, completion: str, granularity: str, featureset: str,
              model: str, created_at: str,
              limits: dict[str, float] | None = None) -> dict[str, Any]:
    """Return a HIF v1 document explaining `completion` at `granularity`."""
    limits = dict(DEFAULT_LIMITS if limits is None else limits)
    max_nodes, max_inc = int(limits["max_nodes"]), int(limits["max_incidences"])
    min_w = float(limits["min_edge_weight"])
    rng = random.Random(seed_of(model, featureset, granularity, prompt, completion))

    nodes: list[dict[str, Any]] = []
    for i, tok in enumerate(tokenize(prompt)[:_MAX_INPUT_TOKENS]):
        nodes.append({"id": f"in-{i}", "type": "input_token", "label": tok, "position": i})
    if granularity == "token":
        units = [{"id": f"out-{i}", "type": "output_token", "label": tok, "position": i}
                 for i, tok in enumerate(tokenize(completion))]
    else:
        units = [{"id": f"sent-{i}", "type": "circuit_supernode", "label": text[:80],
                  "position": i} for i, text in enumerate(sentences(completion))]
    # Output units are never truncated (token graphs need one node per output token);
    # the feature budget shrinks instead.
    feature_budget = max(0, min(64, max_nodes - len(nodes) - len(units)))
    features = []
    for _ in range(feature_budget):
        number = rng.randrange(2_000_000)
        features.append({
            "id": f"feat-{number}", "type": "sae_feature", "label": f"{featureset}/{number}",
            "layer": rng.randrange(24), "activation_strength": round(rng.uniform(0.05, 12.0), 4),
        })
    features = list({f["id"]: f for f in features}.values())  # ids unique
    nodes.extend(units)
    nodes.extend(features)
    inputs = [n for n in nodes if n["type"] == "input_token"]

    incidences: list[dict[str, Any]] = []
    for unit in units:
        for _ in range(_FEATURES_PER_UNIT if features else 0):
            if len(incidences) >= max_inc:
                break
            members = [unit["id"], rng.choice(features)["id"]]
            if inputs and rng.random() < 0.5:
                members.append(rng.choice(inputs)["id"])
            incidences.append({
                "id": f"e-{len(incidences)}",
                "node_ids": list(dict.fromkeys(members)),
                "weight": round(rng.uniform(min_w, 1.0), 4),
                "metadata": {
                    "type": "attribution", "method": "sae-activation-patching",
                    "window": granularity,
                    "description": f"features contributing to {unit['id']}",
                    "provenance": {"capture_layers": sorted(rng.sample(range(24), 3)),
                                   "sae_version": featureset, "model_hash": model_hash(model)},
                },
            })
    return {
        "network-type": "directed",
        "nodes": nodes,
        "incidences": incidences,
        "meta": {
            "version": "hif-1",
            "model_name": model, "model_hash": model_hash(model),
            "sae_dictionary": featureset, "granularity": granularity,
            "created_at": created_at, "limits": limits,
        },
    }
