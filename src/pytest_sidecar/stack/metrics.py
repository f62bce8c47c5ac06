"""Gateway metrics (CONTRACT §6) with prometheus_client, on a registry of its own.

Path labels are route templates (`/v1/traces/{trace_id}/status`), never ids, and every
label set is bounded: unmatched paths count as `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST


class GatewayMetrics:
    def __init__(self, extra: Mapping[str, tuple[str, Mapping[str, str]]] | None = None,
                 status_read_weight: int = 1, reads_by_trace: bool = False) -> None:
        self.status_read_weight = status_read_weight  # §6: one read counts once
        # No `_created` gauge per counter: noise for scrapers and for the §6 lint.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # prometheus_client adds the _total suffix to counters.
        self.requests = Counter("http_requests", "HTTP requests by route template, method "
                                "and status", ["path", "method", "status"], registry=r)
        self.duration = Histogram("http_request_duration_seconds", "HTTP request duration "
                                  "by route template and method", ["path", "method"], registry=r)
        self.chats = Counter("chat_requests", "Chat completions by explanation granularity "
                             "(none: not explained)", ["granularity"], registry=r)
        self.status_gets = Counter("traces_status_get", "Trace status reads", registry=r)
        self.graph_gets = Counter("traces_graph_get", "Trace graph reads", registry=r)
        self.rate_limited = Counter("rate_limit_rejections", "Requests refused with 429 by "
                                    "category", ["category"], registry=r)
        self.rbac_denied = Counter("rbac_denied", "Requests refused by authentication or "
                                   "authorization, by reason", ["reason"], registry=r)
        self.breaker_state = Gauge("upstream_breaker_state", "Upstream circuit breaker: 0 "
                                   "closed, 1 open, 2 half-open", registry=r)
        self.breaker_fastfail = Counter("upstream_breaker_fastfail", "Chats refused by the "
                                        "open circuit breaker without calling the upstream",
                                        registry=r)
        self.upstream_retries = Counter("upstream_retries", "Upstream calls retried, by "
                                        "reason (only connect errors are)", ["reason"],
                                        registry=r)
        for name, (help_text, labels) in (extra or {}).items():  # a policy's own families
            Gauge(name, help_text, list(labels), registry=r).labels(**labels).set(1)
        # What no gateway should have (§6: no label carries a trace id).
        self.status_reads_by_trace = Counter(
            "trace_status_reads", "Status reads per trace", ["trace_id"],
            registry=r) if reads_by_trace else None

    def status_read(self, trace_id: str) -> None:
        """Count one read of a trace's status."""
        self.status_gets.inc(self.status_read_weight)
        if self.status_reads_by_trace is not None:
            self.status_reads_by_trace.labels(trace_id[:64]).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ExplainerMetrics:
    """The explainer's families (CONTRACT §6), served on the explainer's own port."""

    def __init__(self) -> None:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter("explainer_jobs", "Explanation jobs that reached a terminal state, "
                            "by state and granularity", ["state", "granularity"], registry=r)
        self.stage_duration = Histogram("explainer_stage_duration_seconds", "Time spent per "
                                        "explainer stage", ["stage"], registry=r)
        self.queue_lag = Histogram("explainer_queue_lag_seconds", "Time from acceptance to a "
                                   "worker starting the job", registry=r)
        self.backlog = Gauge("hypergraph_backlog_seconds", "Queued explanation work in seconds "
                             "of worker time per worker, by granularity (the KEDA scaling "
                             "signal)", ["granularity"], registry=r)
        self.queue_len = Gauge("queue_len_global", "Accepted jobs not yet started",
                               registry=r)
        self.bp_level = Gauge("backpressure_level", "Backpressure level by granularity "
                              "(0 normal, 1 soft, 2 hard)", ["granularity"], registry=r)
        self.bp_actions = Counter("backpressure_actions", "Backpressure actions taken, by "
                                  "action", ["action"], registry=r)
        for granularity in GRANULARITIES:  # every series exists from the first scrape
            self.bp_level.labels(granularity).set(0)
            for state in ("complete", "failed", "canceled"):
                self.jobs.labels(state, granularity)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


GRANULARITIES = ("sentence", "token")


class MetricsMiddleware:
    """Counts every HTTP response by its route template (pure ASGI: SSE is not buffered)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                method = scope["method"] if scope["method"] in _METHODS else "OTHER"
                self.metrics.requests.labels(path, method, str(message["status"])).inc()
                self.metrics.duration.labels(path, method).observe(
                    time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, observe)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
