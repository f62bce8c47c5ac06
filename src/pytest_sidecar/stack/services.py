"""The gateway's services: the stack's parts a gateway process wires together.

The gateway and the explainer run as two processes sharing one database (shared_db.py):
`GatewayServices` serves the API and puts jobs, the explainer process
(explainer_process.py) consumes them. Each loads the database, settles what a previous
run of its own role left, and follows the other's writes from then on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .artifacts import ArtifactStore
from .audit import Auditor
from .auth import Authenticator
from .backlog import Backlog
from .breaker import Breaker
from .chaos import ChaosControl
from .explain_lane import ExplainLane
from .idempotency import IdempotencyStore
from .jobqueue import DurableQueue
from .metrics import GatewayMetrics
from .policies import Policies
from .ratelimit import RateLimiter
from .settings import StackSettings
from .shared_db import SharedDb
from .store import StatusStore
from .upstream import UpstreamClient
from .variants import policies_of, seamed
from .webhooks import WebhookDispatcher

_UPSTREAM_CHECK_TTL_S = 1.0  # /readyz may be polled often; do not probe upstream each time


def policies_for(settings: StackSettings) -> Policies:
    return policies_of(seamed(settings.variants, settings.defects))


@dataclass
class GatewayServices:
    settings: StackSettings
    db: SharedDb
    store: StatusStore
    artifacts: ArtifactStore
    explainer: ExplainLane
    auth: Authenticator
    upstream: UpstreamClient | None
    limiter: RateLimiter
    idempotency: IdempotencyStore
    metrics: GatewayMetrics
    webhooks: WebhookDispatcher
    auditor: Auditor
    chaos: ChaosControl
    policies: Policies = field(default_factory=Policies)
    _upstream_ok: tuple[float, bool] = field(default=(0.0, False))

    @classmethod
    def build(cls, settings: StackSettings, upstream_url: str | None) -> GatewayServices:
        policies = policies_for(settings)
        chaos = ChaosControl(settings.chaos_control_path, policies.chaos_leases)
        db = SharedDb(settings.shared_db_path)
        store = StatusStore(settings.status_json_path, policies, db=db)  # writes the §7 file
        queue = DurableQueue(db)
        lane = ExplainLane(settings, db, queue, Backlog(db, store, settings.explainer_workers,
                                                        lambda: lane.slowdown()), chaos)
        metrics = GatewayMetrics(policies.extra_metrics, policies.status_read_weight,
                                 policies.label_reads_by_trace)
        upstream = (UpstreamClient(upstream_url, settings.upstream_timeout_s, chaos,
                                   Breaker(settings.breaker_failures,
                                           settings.breaker_cooldown_s), metrics,
                                   policies.breaker_opens, policies.enforce_upstream_timeout)
                    if upstream_url else None)
        return cls(settings, db, store, ArtifactStore(settings.artifact_root), lane,
                   Authenticator(settings.auth_mode, settings.tokens, policies), upstream,
                   RateLimiter(settings.rate_limits, settings.tenant_rate_limits),
                   IdempotencyStore(settings.idempotency_path, policies.idempotency_per_tenant,
                                    policies.idempotency_checks_body), metrics,
                   WebhookDispatcher(settings.webhooks_path, store, settings.webhook_allow_hosts,
                                     settings.webhook_backoff_s, policies),
                   Auditor(settings.audit_log_path, policies.audit_extra), chaos, policies)

    async def start(self) -> None:
        """Load state, settle orphans, start flushing and following the explainer."""
        self.chaos.start()
        self.auditor.start()
        self.store.add_listener(self.auditor.on_change)
        self.webhooks.on_delivered = self.auditor.on_delivered
        self.db.load()
        self.store.adopt_document()
        self.db.start()
        self.store.start()
        ended = self.store.ids_in_states(frozenset({"complete", "failed", "canceled"}))
        self.auditor.reconcile(record for t in ended if (record := self.store.get(t)))
        self.idempotency.load()
        self.idempotency.start()
        self.webhooks.load()
        self.webhooks.start()
        self.explainer.start()
        # A queued trace without a job lost its input with the gateway that opened it
        # (killed mid-stream, or between the record and the job): fail it rather than
        # leave it queued forever (every trace reaches one terminal state). Only this
        # gateway opens traces, and it has none in flight yet.
        for trace_id in self.store.ids_in_states(frozenset({"queued"})):
            if not self.explainer.queue.live(trace_id):
                await self.store.transition(trace_id, "failed", error="explainer_error")

    async def stop(self) -> None:
        await self.explainer.stop()
        await self.explainer.queue.close()
        await self.store.close()
        await self.db.close()
        await self.idempotency.close()
        await self.webhooks.close()
        await self.auditor.close()
        await self.chaos.close()
        if self.upstream:
            await self.upstream.close()

    async def readiness(self) -> dict[str, bool]:
        """The dependencies /readyz reports on, by name."""
        return {
            "status_store": self.store.writable() and (
                not self.policies.readiness_checks_store
                or not self.chaos.outage("status_store")),
            "upstream": await self._upstream_reachable(),
            "explainer": self.explainer.consuming(),
        }

    async def _upstream_reachable(self) -> bool:
        if self.upstream is None or self.chaos.outage("upstream"):
            return False
        checked_at, ok = self._upstream_ok
        if time.monotonic() - checked_at > _UPSTREAM_CHECK_TTL_S:
            ok = await self.upstream.reachable()
            self._upstream_ok = (time.monotonic(), ok)
        return ok
