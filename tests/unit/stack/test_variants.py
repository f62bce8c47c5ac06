"""The allowed variations (stack/variants.py): a registry of seams, each naming the clause
that allows it and a real spec a stricter suite would trip; the rewrite middleware they
use changes answers without the handlers knowing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from pytest_sidecar.stack.policies import Policies, full_jitter
from pytest_sidecar.stack.rewrite import Rewrite, RewriteMiddleware
from pytest_sidecar.stack.settings import StackSettingError, from_env
from pytest_sidecar.stack.variants import VARIANTS, UnknownVariant, parse, policies_of
from pytest_sidecar.vocabulary.clauses import CLAUSES

ROOT = Path(__file__).resolve().parents[3]


def test_there_are_at_least_25_each_naming_its_clause_and_a_real_spec() -> None:
    assert len(VARIANTS) >= 25
    sections = {clause.section for clause in CLAUSES.values()}
    for variant in VARIANTS.values():
        assert variant.clause in sections, variant.name
        path, _, name = variant.would_trip.partition("::")
        found = [p for suite in ("e2e", "load", "chaos")  # the specs, not the self-tests
                 for p in (ROOT / "tests" / suite).glob(Path(path).name)]
        assert found, f"{variant.name}: no spec file {path}"
        function = name.split("[")[0]
        assert not function or f"def {function}" in found[0].read_text(), (
            f"{variant.name}: no spec {variant.would_trip}")
        seams = (variant.policies, variant.rewrite, variant.routes, variant.env, variant.target)
        assert any(seams), f"{variant.name} substitutes nothing"


def test_names_parse_all_is_every_one_and_unknown_ones_are_refused() -> None:
    assert [v.name for v in parse("partial-state, extra-routes")] == [
        "partial-state", "extra-routes"]
    assert len(parse("all")) == len(VARIANTS)
    with pytest.raises(UnknownVariant, match="--variant list"):
        parse("partial-state,nope")
    with pytest.raises(StackSettingError, match="SIDECAR_VARIANTS"):
        from_env("/tmp/x", {"SIDECAR_VARIANTS": "nope"})


def test_policies_and_settings_are_substituted_by_name() -> None:
    policies = policies_of(parse("webhook-jittered-backoff"))
    assert (policies.webhook_attempts, policies.webhook_wait) == (3, full_jitter)
    assert policies_of(()) == Policies()
    settings = from_env("/tmp/x", {"SIDECAR_VARIANTS": "keepalive-5s"})
    assert settings.keepalive_s == 5.0 and settings.variants == ("keepalive-5s",)


def test_jittered_waits_stay_within_the_exponential_step() -> None:
    waits = [full_jitter(1.0, attempt) for attempt in (1, 2, 3, 4)]
    assert all(2 ** (n - 1) / 2 <= w <= 2 ** (n - 1) for n, w in enumerate(waits, 1))


async def _json(request: object) -> JSONResponse:
    return JSONResponse({"code": "invalid_budget", "message": "bad"}, status_code=400)


async def _events(request: object) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"event: status_update\ndata: {\"a\": 1}\n\n"
        yield b"data: [DONE]\n\n"
    return StreamingResponse(body(), media_type="text/event-stream")


def app_with(rewrite: Rewrite) -> Starlette:
    app = Starlette(routes=[Route("/json", _json), Route("/events", _events)])
    app.add_middleware(RewriteMiddleware, rewrite=rewrite)
    return app


@pytest.mark.asyncio
async def test_the_rewrite_changes_json_bodies_event_lines_and_headers() -> None:
    (codes,) = [v.rewrite for v in parse("error-codes-renamed")]
    (spaces,) = [v.rewrite for v in parse("sse-without-space")]
    assert codes and spaces
    transport = httpx.ASGITransport(app=app_with(codes))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/json")
    assert answer.json() == {"code": "bad_request", "message": "bad"}
    assert answer.headers["content-length"] == str(len(answer.content))
    transport = httpx.ASGITransport(app=app_with(spaces))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        text = (await client.get("/events")).text
    assert text == 'event:status_update\ndata:{"a": 1}\n\ndata:[DONE]\n\n'
    headers = Rewrite(headers=lambda path, status, h: h.__setitem__("x-variant", path))
    transport = httpx.ASGITransport(app=app_with(headers))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/json")
    assert answer.headers["x-variant"] == "/json" and json.loads(answer.content)["code"]
