"""GET /v1/chat/completions/{id}/explanation (CONTRACT §2.9): a completion's explanation
as the HIF v2 envelope."""

from __future__ import annotations

import asyncio
import gzip
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..auth import READ
from ..errors import ApiError
from ..hif_v2 import envelope
from .requests import fresh, principal, services_of


async def explanation(request: Request) -> Response:
    services = services_of(request)
    who = principal(request, READ) if services.policies.explanation_needs_token else None
    completion_id = request.path_params["completion_id"]
    trace_id = services.store.trace_of_completion(completion_id)
    record = services.store.get(trace_id) if trace_id else None
    foreign = who is not None and record is not None and record["tenant_id"] != who.tenant_id
    if record is None or (foreign and services.policies.foreign_completions_hidden):
        raise ApiError(404, "not_found", f"no explanation for {completion_id}")
    record = await fresh(request, record)
    if record["state"] in ("queued", "running", "partial"):
        return JSONResponse({"id": completion_id, "status": "pending",
                             "eta_seconds": services.explainer.estimated_wait_s()},
                            status_code=202)
    if record["state"] != "complete":
        raise ApiError(404, "not_found",
                       f"no explanation for {completion_id}: trace {record['state']}")
    data = await asyncio.to_thread(services.artifacts.get_gzip, record["s3_key"])
    graph = json.loads(gzip.decompress(data))
    return JSONResponse(envelope(completion_id, record.get("model", ""),
                                 record["updated_at"], graph))


ROUTES = [Route("/v1/chat/completions/{completion_id}/explanation", explanation,
                methods=["GET"])]
