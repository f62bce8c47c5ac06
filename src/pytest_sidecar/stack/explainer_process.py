"""The explainer process: its services and its own HTTP surface (/metrics, /healthz).

It imports neither the gateway's routes nor an HTTP client: a process that only
explains starts lighter, and killing it leaves the gateway answering.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .artifacts import ArtifactStore
from .chaos import ChaosControl
from .explainer import Explainer
from .jobqueue import DurableQueue
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .policies import Policies
from .settings import StackSettings
from .shared_db import SharedDb
from .store import StatusStore
from .variants import policies_of, seamed


@dataclass
class ExplainerServices:
    settings: StackSettings
    db: SharedDb
    store: StatusStore
    queue: DurableQueue
    explainer: Explainer
    chaos: ChaosControl
    policies: Policies

    @classmethod
    def build(cls, settings: StackSettings) -> ExplainerServices:
        policies = policies_of(seamed(settings.variants, settings.defects))
        chaos = ChaosControl(settings.chaos_control_path, policies.chaos_leases)
        db = SharedDb(settings.shared_db_path)
        store = StatusStore(settings.status_json_path, policies, db=db, snapshot=False)
        queue = DurableQueue(db, policies.durable_queue, consume=True)
        explainer = Explainer(settings, store, queue, ArtifactStore(settings.artifact_root),
                              chaos, policies)
        return cls(settings, db, store, queue, explainer, chaos, policies)

    async def start(self) -> None:
        self.chaos.start()
        self.db.load()
        self.db.start()
        await self.explainer.start()

    async def stop(self) -> None:
        await self.explainer.stop()
        await self.queue.close()
        await self.db.close()
        await self.chaos.close()


async def _metrics(request: Request) -> Response:
    return Response(request.app.state.explainer.metrics.exposition(),
                    media_type=METRICS_CONTENT_TYPE)


async def _healthz(request: Request) -> Response:
    consuming = request.app.state.explainer.consuming()
    return JSONResponse({"status": "ok" if consuming else "stalled"},
                        status_code=200 if consuming else 503)


def create_explainer_app(explainer: Explainer) -> Starlette:
    """The explainer process's own HTTP surface: /metrics and /healthz."""
    app = Starlette(routes=[Route("/metrics", _metrics, methods=["GET"]),
                            Route("/healthz", _healthz, methods=["GET"])])
    app.state.explainer = explainer
    return app
