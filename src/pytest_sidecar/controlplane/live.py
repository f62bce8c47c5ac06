"""A run's events as they happen: Server-Sent Events (resumable with Last-Event-ID) and
the same over a WebSocket. The stored history is replayed first, then live events, up
to the run's end; heartbeats keep idle connections open (CONTRACT §9)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from .auth import ControlPlaneApiError, OperatorAuthenticator
from .runs import RunManager
from .settings import Settings
from .store import ACTIVE, Store


class LiveEvents:
    """The event routes of the API, over the run store and the manager's event bus."""

    def __init__(self, settings: Settings, store: Store, manager: RunManager,
                 auth: OperatorAuthenticator, known_run: Callable[[str], dict[str, Any]]) -> None:
        self.settings, self.store, self.manager = settings, store, manager
        self.auth, self.known_run = auth, known_run

    async def events(self, request: Request) -> Response:
        run = self.known_run(request.path_params["run_id"])
        after = _last_event_id(request.headers.get("last-event-id")
                               or request.query_params.get("after"))
        return StreamingResponse(self.sse(run["id"], after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def sse(self, run_id: str, after: int) -> AsyncIterator[str]:
        async for event_id, body in self.follow(run_id, after):
            if event_id is None:
                yield ": keep-alive\n\n"
            else:
                yield f"id: {event_id}\nevent: {body['type']}\ndata: {json.dumps(body)}\n\n"

    async def follow(self, run_id: str, after: int
                     ) -> AsyncIterator[tuple[int | None, dict[str, Any]]]:
        """The run's events after `after`: the stored history first, then live ones,
        up to the end; (None, {}) is a heartbeat."""
        bus = self.manager.bus
        queue = bus.subscribe(run_id)  # before the replay, so nothing falls in between
        try:
            last = after
            for event_id, body in self.store.events_after(run_id, after):
                last = event_id
                yield event_id, body
                if body.get("type") == "end":
                    return
            run = self.store.run(run_id)
            if run and run["state"] not in ACTIVE:
                # Finished, and the viewer has seen its end already (resumed past it),
                # or the end was stored just after the replay: send what is left, stop.
                for event_id, body in self.store.events_after(run_id, last):
                    yield event_id, body
                return
            while True:
                try:
                    event_id, body = await asyncio.wait_for(queue.get(),
                                                            self.settings.heartbeat_s)
                except TimeoutError:
                    yield None, {}
                    continue
                if event_id <= last:
                    continue
                last = event_id
                yield event_id, body
                if body.get("type") == "end":
                    return
        finally:
            bus.unsubscribe(run_id, queue)

    async def stream_ws(self, websocket: WebSocket) -> None:
        """The same events over a WebSocket ({"id": n, ...}); `?after=n` resumes."""
        run_id = websocket.path_params["run_id"]
        try:
            self.auth.require(websocket.headers.get("authorization"), "tests.read")
            self.known_run(run_id)
        except ControlPlaneApiError as exc:
            await websocket.send_denial_response(_denial(exc))
            return
        await websocket.accept()
        after = _last_event_id(websocket.query_params.get("after"))
        with contextlib.suppress(WebSocketDisconnect):
            async for event_id, body in self.follow(run_id, after):
                await websocket.send_json({"type": "heartbeat"} if event_id is None
                                          else {"id": event_id, **body})
            await websocket.close()



def _last_event_id(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0


def _denial(exc: ControlPlaneApiError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status,
                        headers=exc.headers)
