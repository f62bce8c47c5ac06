"""The suite's own tables cover the contract: the scope matrix of the RBAC specs and the
fuzzer's operations name every documented route, each with its documented scope."""

from __future__ import annotations

from tests.e2e.test_contract_fuzz import OPERATIONS
from tests.e2e.test_gateway_rbac import ROUTES, UNKNOWN_EXPLANATION, route_needs

from pytest_sidecar.contracts.openapi import documented_routes, load_openapi, operations


def test_the_scope_matrix_and_the_fuzzer_cover_every_documented_route() -> None:
    # The matrix asks the explanation route twice: for a real completion and for an id
    # nobody made (a refusal must not depend on the lookup).
    assert set(ROUTES) - {UNKNOWN_EXPLANATION} == documented_routes()
    for key, route in ROUTES.items():
        documented = key if key != UNKNOWN_EXPLANATION else (
            "GET", "/v1/chat/completions/{completion_id}/explanation")
        assert operations()[documented].get("x-scope") == route.scope, key
        assert route_needs(key)
    fuzzed = {tuple(param.values[:2]) for param in OPERATIONS}
    assert fuzzed == {key for key in documented_routes() if key[1] in load_openapi()["paths"]}


def test_specs_annotate_their_fixtures_with_the_exported_types() -> None:
    """`evidence: Evidence`, `traces: Traces`...: a spec's fixture annotated `Any` hides
    it from the type checker that CI runs over tests."""
    import ast
    from pathlib import Path

    typed = {"evidence", "traces", "hif_validator", "sidecar_config", "sidecar_target",
             "gateway_factory", "metrics_factory", "gateway", "tenants"}
    loose, checked = [], 0
    tests = Path(__file__).resolve().parents[1]
    for suite in ("e2e", "load", "chaos"):
        for path in sorted((tests / suite).glob("test_*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef):
                    named = [arg for arg in node.args.args if arg.arg in typed]
                    checked += len(named)
                    loose += [f"{path.name}::{node.name}({arg.arg})" for arg in named
                              if isinstance(arg.annotation, ast.Name)
                              and arg.annotation.id == "Any"]
    assert checked > 100, f"only {checked} fixture parameters found: the walk missed specs"
    assert loose == []
