"""Allowed variations: ways a gateway may differ from the reference stack and still keep
docs/contract.md. They are the other half of the detection matrix: a defect must fail
exactly its clause's specs; a variation must fail none, or the suite holds other
implementations to this stack's habits.

`sidecar-stack serve --variant NAME` (repeatable; `list`, `all`) or SIDECAR_VARIANTS=a,b.
Each entry names the section that allows it and the spec a suite stricter than the
contract would trip, and substitutes seams when the stack is built: policies
(stack/policies.py), a response rewrite (stack/rewrite.py), extra routes, settings, or
what the target file declares. No handler asks which variation runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .exceptions import StackError
from .policies import Policies, full_jitter, ulid_like_id
from .rewrite import Rewrite

ENV = "SIDECAR_VARIANTS"

# The error codes docs/contract.md names; any other code is the implementation's choice.
NAMED_CODES = frozenset({
    "invalid_explain_mode", "trace_exists", "invalid_json", "invalid_request",
    "upstream_error", "upstream_timeout", "upstream_unconfigured", "trace_not_found",
    "graph_not_ready", "trace_expired", "trace_failed", "trace_canceled",
    "webhook_url_forbidden", "trace_not_cancelable", "idempotency_key_reused", "not_found",
    "not_ready", "unauthorized", "forbidden", "missing_scope", "rate_limited",
    "explain_unavailable", "upstream_unavailable"})


@dataclass(frozen=True)
class Variant:
    """One allowed variation and the seams it substitutes."""

    name: str
    clause: str  # the section of docs/contract.md that allows it
    summary: str
    would_trip: str  # the spec a suite stricter than the contract would fail
    policies: Mapping[str, Any] = field(default_factory=dict)
    rewrite: Rewrite | None = None
    routes: tuple[Route, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # stack settings it sets
    target: Callable[[dict[str, Any]], None] | None = None  # edits the target file


# -- rewrites ---------------------------------------------------------------------------
def _error(status: int, body: Any) -> bool:
    return status >= 400 and isinstance(body, dict) and isinstance(body.get("code"), str)


def _rename_unnamed_codes(path: str, status: int, body: Any) -> Any:
    if _error(status, body) and body["code"] not in NAMED_CODES:
        return {**body, "code": "bad_request" if status < 500 else "internal"}
    return body


def _add_details(path: str, status: int, body: Any) -> Any:
    return {**body, "details": {"path": path, "status": status}} if _error(status, body) \
        else body


def _terse_messages(path: str, status: int, body: Any) -> Any:
    return {**body, "message": f"request failed ({status})"} if _error(status, body) else body


def _add_vendor_fields(path: str, status: int, body: Any) -> Any:
    # The graph is a stored artifact served as it is (gzip or plain alike): left alone.
    if status >= 300 or not isinstance(body, dict) or path.endswith("/graph"):
        return body
    extra: dict[str, Any] = {"x_gateway": {"region": "eu-west-1", "build": "2.3.1"}}
    if body.get("object") == "chat.completion":
        extra["system_fingerprint"] = "fp_variant"
    return {**body, **extra}


def _prefixed_stage(path: str, status: int, body: Any) -> Any:
    if path.endswith("/status") and status == 200 and isinstance(body, dict) \
            and isinstance(body.get("stage"), str):
        return {**body, "stage": "pipeline." + body["stage"]}
    return body


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def _dumps_reversed(body: Any) -> str:
    import json

    return json.dumps(_reversed_keys(body))


_FIELD_SPACE = re.compile(r"^(data|event|id): ")


def _no_space(path: str, line: str) -> str:
    return _FIELD_SPACE.sub(r"\1:", line)


def _allow_options(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 405 and headers.get("allow"):
        headers["allow"] = headers["allow"] + ", OPTIONS"


def _cors_extras(path: str, status: int, headers: MutableHeaders) -> None:
    if headers.get("access-control-allow-origin"):
        headers["access-control-max-age"] = "600"
        headers["access-control-expose-headers"] = "x-request-id, x-trace-id"
        headers["vary"] = "Origin"


def _graph_caching(path: str, status: int, headers: MutableHeaders) -> None:
    if path.endswith("/graph") and status == 200:
        headers["cache-control"] = "private, max-age=60"


# -- extra routes ----------------------------------------------------------------------
async def _version(request: Request) -> JSONResponse:
    return JSONResponse({"version": "2.3.1"})


async def _usage(request: Request) -> JSONResponse:
    """A vendor's usage summary, which some gateways serve beside the chat route."""
    return JSONResponse({"object": "usage", "requests": 0})


# -- target file edits -----------------------------------------------------------------
CHAT_ONLY = ["chat", "chat_stream", "auth"]


def _chat_only(doc: dict[str, Any]) -> None:
    """Declare only the chat lane: no explain, no files, no metrics, no route table."""
    doc["capabilities"] = [c for c in CHAT_ONLY if c != "auth" or "tenants" in doc]
    for key in ("metrics", "files", "routes", "cors", "openapi", "trace_ttl_seconds",
                "resilience"):
        doc.pop(key, None)


def _no_service_log(doc: dict[str, Any]) -> None:
    doc.get("files", {}).pop("log", None)


def _without_positions(graph: dict[str, Any]) -> dict[str, Any]:
    return {**graph, "nodes": [{k: v for k, v in node.items() if k != "position"}
                               for node in graph["nodes"]]}


_ALL = (
    Variant("error-codes-renamed", "§2.1",
            "every error code the contract does not name is the gateway's own "
            "(bad_request for a bad explain header, an overlong key, a query token ...)",
            "test_error_responses.py::test_bad_input_gets_an_exact_json_error[bad-budget]",
            rewrite=Rewrite(body=_rename_unnamed_codes)),
    Variant("error-details", "§2", "error bodies add the optional details object",
            "test_error_responses.py::test_bad_input_gets_an_exact_json_error",
            rewrite=Rewrite(body=_add_details)),
    Variant("error-messages-terse", "§2", "error messages are terse and generic",
            "test_trace_workflow.py::test_invalid_explain_headers_are_400",
            rewrite=Rewrite(body=_terse_messages)),
    Variant("vendor-fields", "§2.1",
            "2xx JSON objects carry extra vendor fields (system_fingerprint, x_gateway)",
            "test_chat_completions.py::test_a_chat_answers_with_an_openai_completion_object",
            rewrite=Rewrite(body=_add_vendor_fields)),
    Variant("json-keys-reversed", "§2", "JSON objects list their keys in another order",
            "test_idempotency.py::test_same_key_and_request_replays_the_first_response",
            rewrite=Rewrite(body=lambda path, status, body: body, dumps=_dumps_reversed)),
    Variant("stage-names-prefixed", "§2.3", "the status's stage names are the gateway's own",
            "test_trace_workflow.py::test_lifecycle_reaches_complete_with_a_valid_graph",
            rewrite=Rewrite(body=_prefixed_stage)),
    Variant("sse-without-space", "§2.5",
            "SSE fields are written without the optional space: data:{...}, data:[DONE]",
            "test_trace_workflow.py::test_a_streamed_chat_opens_a_trace_from_its_header",
            rewrite=Rewrite(event_line=_no_space)),
    Variant("allow-lists-options", "§2.10", "a 405's Allow also names OPTIONS",
            "test_error_responses.py::test_bad_input_gets_an_exact_json_error[unknown-method]",
            rewrite=Rewrite(headers=_allow_options)),
    Variant("cors-extra-headers", "§2.11",
            "CORS answers add Max-Age, Expose-Headers and Vary",
            "test_cors.py::test_an_allowed_origin_is_echoed_never_star",
            rewrite=Rewrite(headers=_cors_extras)),
    Variant("graph-cache-headers", "§2.4", "the graph answer carries Cache-Control",
            "test_trace_workflow.py::test_the_graph_honours_accept_encoding_gzip",
            rewrite=Rewrite(headers=_graph_caching)),
    Variant("extra-routes", "§2", "GET /v1/version and GET /v1/usage are served too",
            "test_api_versioning.py::test_the_route_table_holds_every_route",
            routes=(Route("/v1/version", _version, methods=["GET"]),
                    Route("/v1/usage", _usage, methods=["GET"]))),
    Variant("hif-without-positions", "§4", "HIF nodes leave out the optional position",
            "test_trace_workflow.py::test_lifecycle_reaches_complete_with_a_valid_graph[token",
            policies={"shape_graph": _without_positions}),
    Variant("webhook-jittered-backoff", "§2.6",
            "3 delivery attempts in all, with jittered exponential backoff",
            "test_webhooks.py::test_delivery_gives_up_after_five_attempts",
            policies={"webhook_attempts": 3, "webhook_wait": full_jitter}),
    Variant("webhook-slower-backoff", "§2.6", "a longer base wait between delivery attempts",
            "test_webhooks.py::test_delivery_gives_up_after_five_attempts",
            env={"WEBHOOK_BACKOFF_MS": "400"}),
    Variant("partial-state", "§2.2",
            "traces pass through the optional partial state before complete",
            "test_trace_workflow.py::test_sse_stream_delivers_state_changes",
            policies={"partial_at_stage": "build_graph"}),
    Variant("explain-refusal-429", "§5",
            "a saturated explanation lane refuses explain work 429 explain_lane_full",
            "tests/load/test_backpressure_under_load.py",
            policies={"explain_refusal": (429, "explain_lane_full")}),
    Variant("trace-ids-ulid", "§2", "trace ids are 26-character ULID-like strings",
            "test_trace_workflow.py::test_trace_ids_the_gateway_makes_are_unguessable",
            policies={"new_trace_id": ulid_like_id}),
    Variant("slower-explainer", "§5",
            "the explainer takes 1.5x as long, still within the SLOs",
            "tests/load/test_slo_adherence.py",
            env={"EXPLAINER_SENTENCE_MS": "45", "EXPLAINER_TOKEN_MS": "30"}),
    Variant("keepalive-5s", "§2.5", "keep-alive comments every 5 s, not 15",
            "test_trace_workflow.py::test_a_quiet_stream_gets_keep_alive_comments",
            env={"SSE_KEEPALIVE_SECONDS": "5"}),
    Variant("audit-extra-fields", "§7", "audit lines carry fields beyond the contract's",
            "test_audit_pii.py::test_the_submit_and_queued_lines_of_a_trace_are_journaled",
            policies={"audit_extra": {"region": "eu-west-1", "gateway_version": "2.3.1"}}),
    Variant("metrics-extra-family", "§6", "the gateway exposes a build-info family too",
            "test_observability.py::test_the_expositions_follow_the_rules",
            policies={"extra_metrics": {
                "gateway_build_info": ("Build of this gateway.", {"version": "2.3.1"})}}),
    Variant("multi-token-chunks", "§2.1", "a streamed chunk carries three tokens",
            "test_chat_completions.py::test_a_streamed_chat_sends_openai_chunks_then_done",
            policies={"tokens_per_chunk": 3}),
    Variant("stream-usage-chunk", "§2.1",
            "a streamed answer ends with OpenAI's usage chunk (choices: []) before [DONE]",
            "test_chat_completions.py::test_a_streamed_chat_sends_openai_chunks_then_done",
            policies={"usage_chunk": True}),
    Variant("no-service-log", "§7",
            "the service log is not shared with the suite (no files.log)",
            "test_correlation_and_logging.py::test_the_service_log_holds_no_token",
            target=_no_service_log),
    Variant("chat-only", "§2.1",
            "declares only chat, chat_stream and auth: no explanation lane, files or "
            "metrics shared",
            "test_error_responses.py::test_bad_input_gets_an_exact_json_error[token-in-query]",
            target=_chat_only),
)

VARIANTS: dict[str, Variant] = {variant.name: variant for variant in _ALL}


class UnknownVariant(StackError, ValueError):
    """A variant name that is not in the registry."""


def parse(raw: str | Iterable[str]) -> tuple[Variant, ...]:
    """Variants from a comma list or names; `all` is every one; unknown names raise."""
    names = [n.strip() for n in (raw.split(",") if isinstance(raw, str) else raw)]
    names = [n for n in names if n]
    if "all" in names:
        return _ALL
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise UnknownVariant(f"unknown variant {', '.join(unknown)}; `sidecar-stack serve "
                             "--variant list` lists them")
    return tuple(VARIANTS[n] for n in dict.fromkeys(names))


class Seamed(Protocol):
    """Anything that substitutes seams when the stack is built: a variant or a defect."""

    @property
    def policies(self) -> Mapping[str, Any]: ...

    @property
    def rewrite(self) -> Rewrite | None: ...


def policies_of(items: Iterable[Seamed], base: Policies | None = None) -> Policies:
    """The policies with every item's substitutions applied, in order."""
    policies = base or Policies()
    for item in items:
        policies = replace(policies, **item.policies)
    return policies


def seamed(variants: Iterable[str], defects: Iterable[str]) -> list[Seamed]:
    """The variants and defects a stack runs with, as what they substitute."""
    from .defects import DEFECTS

    return [*parse(variants), *(DEFECTS[name] for name in sorted(defects))]
