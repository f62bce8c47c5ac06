"""Contract fuzzing (CONTRACT §2): Schemathesis generates requests from the OpenAPI
document, valid and invalid, and sends them with real tokens. No 5xx, every status and
body as documented, bad input rejected with a 4xx.

Needs the `schemathesis` extra (pip install 'pytest-sidecar[schemathesis]'); the example
budget per operation is --sidecar-fuzz-examples. Fuzzing enqueues explanation work, so in
embedded mode it runs on a stack of its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sidecar import Evidence, SidecarConfig
from pytest_sidecar.contracts.openapi import load_openapi
from pytest_sidecar.contracts.routes import ROUTE_NEEDS
from pytest_sidecar.fixtures.quiet import QuietTarget
from pytest_sidecar.outcomes import SkipReason, skip

# own_stack: on the embedded stack the bursts go to quiet_target, a stack of the module's own
pytestmark = [pytest.mark.fuzz, pytest.mark.own_stack, pytest.mark.profile("core")]

# The API routes of the contract (not the operational ones), with what each needs.
OPERATIONS = [pytest.param(method, path, marks=pytest.mark.needs(*needs),
                           id=f"{method} {path}")
              for (method, path), needs in ROUTE_NEEDS.items() if path.startswith("/v1/")]


def explain_refusal(response: Any) -> bool:
    """True for a 503 explain refusal §5 allows: Retry-After and §2's JSON error shape.
    §5 names no code for it, so any code is fine (a saturated explanation lane may refuse
    explain work, which the fuzzer's own bursts can bring about on a shared target)."""
    if response.status_code != 503 or not response.headers.get("retry-after", "").isdigit():
        return False
    try:
        return isinstance(response.json().get("code"), str)
    except ValueError:
        return False


@pytest.mark.clause("§2/error-body", "§2.1/body-validation")
@pytest.mark.parametrize("method,path", OPERATIONS)
def test_operation_conforms_under_fuzzing(method: str, path: str, quiet_target: QuietTarget,
                                          sidecar_config: SidecarConfig,
                                          evidence: Evidence) -> None:
    try:
        import schemathesis
        from hypothesis import HealthCheck, given, settings
        from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance
    except ImportError:
        skip(SkipReason.TOOL_MISSING, "schemathesis is not installed",
             "pip install 'pytest-sidecar[schemathesis]'", "§2")
    target = quiet_target.target
    schema = schemathesis.openapi.from_dict(load_openapi())
    operation = schema[path][method]
    # Tenant B: on the dedicated stack tenant A's rate limits are tight. The header name
    # is canonical so Schemathesis can strip it to check that auth is really enforced.
    token = target.tenants["b"].tokens.write if "auth" in target.capabilities \
        and "b" in target.tenants else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A target that does not declare 'auth' (AUTH_MODE=none) is right to answer without a
    # token: checking that it refuses one would judge §3 where it makes no claim.
    excluded = [positive_data_acceptance, *([] if "auth" in target.capabilities
                                            else [ignored_auth])]
    statuses: dict[int, int] = {}

    @settings(max_examples=sidecar_config.fuzz_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        # A valid body may ask for thousands of tokens in many choices: the fuzzer judges
        # the answer's conformance, not the model's stamina, so such asks are kept small.
        if isinstance(case.body, dict):
            for key, most in (("max_tokens", 64), ("n", 4)):
                value = case.body.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > most:
                    case.body[key] = most
        # Every check but positive_data_acceptance: the contract rejects some schema-valid
        # requests on purpose (an idempotency key reused for another body, or sent with
        # stream: true: 422), which that heuristic would report.
        response = case.call_and_validate(base_url=target.url, headers=headers,
                                          timeout=sidecar_config.timeout,
                                          excluded_checks=excluded)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500 or explain_refusal(response), (
            f"§2: {response.status_code} for {case.as_curl_command()}")

    fuzz()
    cases = sum(statuses.values())
    assert cases >= 1, f"§2: Schemathesis generated no case for {method} {path}: nothing judged"
    evidence.record(operation=f"{method} {path}", cases=cases, statuses=statuses,
                    budget=sidecar_config.fuzz_examples)
