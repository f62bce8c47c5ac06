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
