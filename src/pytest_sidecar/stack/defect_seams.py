"""What the defects written as seams substitute (stack/defects.py lists them): each a
policy (stack/policies.py) or a response rewrite (stack/rewrite.py) that breaks one
clause of docs/contract.md the way a real gateway does. The stack's own handlers never
see them; the registry hands them over when the stack is built."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders

from .errors import ApiError

if TYPE_CHECKING:
    from .principal import Principal


def header_tenant(who: Principal, headers: Mapping[str, str]) -> Principal:
    claimed = headers.get("x-tenant-id")
    return replace(who, tenant_id=claimed) if claimed else who


def delete_needs_read(method: str, scope: str) -> str:
    return "traces:read" if method == "DELETE" else scope


def one_bucket(tenant_id: str) -> str:
    return "all"  # sized by whichever tenant used it first


def lookup_failed(trace_id: str) -> ApiError:
    return ApiError(500, "internal_error", "trace lookup failed")


def forbidden(path: str, method: str, trace_id: str) -> ApiError | None:
    return ApiError(403, "forbidden", "this trace belongs to another tenant")


def status_readable(path: str, method: str, trace_id: str) -> ApiError | None:
    return None if path.endswith("/status") else missing(trace_id)


def cancel_allowed(path: str, method: str, trace_id: str) -> ApiError | None:
    return None if method == "DELETE" else missing(trace_id)


def missing(trace_id: str) -> ApiError:
    return ApiError(404, "trace_not_found", f"trace {trace_id} not found")


def never_expires(record: Mapping[str, Any], now: float) -> bool:
    return False


def ignoring(*names: str) -> Callable[[Mapping[str, str]], Mapping[str, str]]:
    """The explain headers with `names` unread (as a gateway that never looks)."""
    def headers(sent: Mapping[str, str]) -> Mapping[str, str]:
        return {k: v for k, v in sent.items() if k.lower() not in names}
    return headers


def mode_unchecked(sent: Mapping[str, str]) -> Mapping[str, str]:
    """Any x-explain-mode accepted: only 'hypergraph' opens a trace, others pass."""
    mode = sent.get("x-explain-mode", "")
    return {**dict(sent.items()), "x-explain-mode": "hypergraph" if mode == "hypergraph"
            else ""}


def any_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    return True


def without_done(path: str, line: str) -> str:
    return "" if path == "/v1/chat/completions" and line.replace(" ", "") == "data:[DONE]" \
        else line


def without_ids(path: str, line: str) -> str:
    return "" if path.endswith("/stream") and line.startswith("id:") else line


def prefix_origin(origin: bytes, allowed: frozenset[bytes]) -> bool:
    return any(origin.startswith(prefix) for prefix in allowed)


def naive_timestamp(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))  # no offset


def every_ending(hook: Mapping[str, Any], state: str) -> bool:
    return state in ("complete", "failed", "canceled")


_SEQUENCE = itertools.count(1)
_INSTANCE = f"{int(time.time() * 1000):x}"  # unique per process start, so restarts never collide


def sequential_id() -> str:
    """The process's start then a counter: unique, and the next one is guessable."""
    return f"{_INSTANCE}-{next(_SEQUENCE):08d}"


def error_as_complete(path: str, line: str) -> str:
    return "event: complete" if path.endswith("/stream") and line == "event: error" else line


def wrong_allow(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 405:
        headers["allow"] = "GET, PUT"


def leaky_json_error(path: str, status: int, body: Any) -> Any:
    if status == 400 and isinstance(body, dict) and body.get("code") == "invalid_json":
        return {**body, "message": "JSONDecodeError('Expecting value: line 1 column 10 "
                                   "(char 9)') in sidecar/gateway/requests.py:88"}
    return body


def epoch_created_at(path: str, status: int, body: Any) -> Any:
    if path.endswith("/explanation") and status == 200 and isinstance(body, dict) \
            and "created_at" in body:
        return {**body, "created_at": int(time.time())}
    return body


def no_metadata(path: str, status: int, body: Any) -> Any:
    if path == "/v1/chat/completions" and status == 200 and isinstance(body, dict):
        return {k: v for k, v in body.items() if k != "explanation_metadata"}
    return body


def cut_as_stop(path: str, status: int, body: Any) -> Any:
    """Every choice of a chat says `stop`, even the one max_tokens cut."""
    if path == "/v1/chat/completions" and isinstance(body, dict) and isinstance(
            body.get("choices"), list):
        return {**body, "choices": [{**c, "finish_reason": "stop"} if isinstance(c, dict)
                                    and c.get("finish_reason") == "length" else c
                                    for c in body["choices"]]}
    return body


def cut_chunk_as_stop(path: str, line: str) -> str:
    if path == "/v1/chat/completions" and line.startswith("data:"):
        return line.replace('"finish_reason": "length"', '"finish_reason": "stop"')
    return line


def metadata_pending(path: str, status: int, body: Any) -> Any:
    meta = body.get("explanation_metadata") if isinstance(body, dict) else None
    if path == "/v1/chat/completions" and isinstance(meta, dict):
        return {**body, "explanation_metadata": {**meta, "status": "pending"}}
    return body


def status_view(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    """A rewrite of the status object wherever the status route answers it."""
    def edit(path: str, status: int, body: Any) -> Any:
        if path.endswith("/status") and status == 200 and isinstance(body, dict):
            return change(body)
        return body
    return edit


def without_stage(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in ("stage", "featureset")}


def epoch_times(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "created_at": int(time.time()), "updated_at": int(time.time())}


def drop_allow(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 405 and "allow" in headers:
        del headers["allow"]


def retry_after_zero(path: str, status: int, headers: MutableHeaders) -> None:
    if status == 429 and "retry-after" in headers:
        headers["retry-after"] = "0"


def error_without_request_id(path: str, status: int, headers: MutableHeaders) -> None:
    if status >= 400 and "x-request-id" in headers:
        del headers["x-request-id"]


def graph(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], Any]:
    """A graph shaper that applies `change` to a copy of the graph."""
    def shape(graph: dict[str, Any]) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(graph))
        change(copy)
        return copy
    return shape


def dangling(graph: dict[str, Any]) -> None:
    if graph["incidences"]:
        graph["incidences"][-1]["node_ids"][-1] = "feat-missing"


def heavy_edge(graph: dict[str, Any]) -> None:
    if graph["incidences"]:
        graph["incidences"][0]["weight"] = 1.25


def one_output_short(graph: dict[str, Any]) -> None:
    outputs = [n["id"] for n in graph["nodes"] if n["type"] == "output_token"]
    if outputs:
        graph["nodes"] = [n for n in graph["nodes"] if n["id"] != outputs[-1]]
        graph["incidences"] = [i for i in graph["incidences"] if outputs[-1] not in i["node_ids"]]


def version_two(graph: dict[str, Any]) -> None:
    graph["meta"]["version"] = "hif-2"


def graph_not_ready(trace_id: str, state: str) -> ApiError:
    return ApiError(404, "graph_not_ready", f"trace {trace_id} is {state}")


def query_ignored(authorization: str | None, query: Mapping[str, str]) -> str | None:
    return authorization  # a token in the query string is neither refused nor used


def query_authenticates(authorization: str | None, query: Mapping[str, str]) -> str | None:
    if not authorization and query.get("access_token"):
        return f"Bearer {query['access_token']}"  # the EventSource convenience
    from .policies import header_credentials

    return header_credentials(authorization, query)


def unknown_token_unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "invalid token", headers={"WWW-Authenticate": "Bearer"})


def reserialised_json(payload: Mapping[str, Any], body: bytes) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def raw_text(text: str) -> str:
    return text  # not scrubbed


def without_expires_at(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: v for k, v in record.items() if k != "expires_at"}
    return record


def complete_cancelable(before: str, after: str) -> bool:
    from .policies import forward_only

    return (before, after) == ("complete", "canceled") or forward_only(before, after)


def html_upstream_error(exc: Any) -> ApiError:
    if exc.status == 502:
        from .errors import HtmlError

        return HtmlError(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    from .policies import json_upstream_error

    return json_upstream_error(exc)


def made_up_graph(record: Mapping[str, Any]) -> dict[str, Any] | None:
    if record["state"] in ("running", "partial"):  # an empty graph, served early
        return {"network-type": "directed", "nodes": [], "incidences": [],
                "meta": {"version": "hif-1"}}
    return None
