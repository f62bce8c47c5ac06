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


def documented_routes() -> set[tuple[str, str]]:
    """(METHOD, path template) for every operation in the document."""
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    return {(method.upper(), path)
            for path, item in load_openapi()["paths"].items()
            for method in item if method in methods}
