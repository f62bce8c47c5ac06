"""The OpenAPI document of the v1 API (`hypergraph-api.yaml`, also at
api/openapi/hypergraph-api.yaml in the repository) and validators built from it."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

DOCUMENT = "hypergraph-api.yaml"


@cache
def load_openapi() -> dict[str, Any]:
    """The parsed OpenAPI document (cached; treat as read-only)."""
    import yaml

    text = resources.files(__package__).joinpath(DOCUMENT).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@cache
def request_validator(schema_name: str) -> Any:
    """A JSON Schema validator for `components.schemas.<schema_name>` (refs resolved)."""
    import jsonschema

    document = load_openapi()
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path template) -> operation, for the API (`paths`) and the operational
    endpoints (`x-operational-paths`)."""
    document = load_openapi()
    found = {}
    for section in ("paths", "x-operational-paths"):
        for path, item in document.get(section, {}).items():
            for method, operation in item.items():
                if method in METHODS:
                    found[(method.upper(), path)] = operation
    return found


def documented_routes() -> set[tuple[str, str]]:
    """(METHOD, path template) for every documented operation, API and operational."""
    return set(operations())
