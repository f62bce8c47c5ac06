"""What the control plane serves as documents rather than JSON: a run's reports, opened
by a plain link (the session cookie carries the caller) and downloadable, and pytest's
output, followed live while the run goes (CONTRACT §9)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

from starlette.responses import FileResponse, Response, StreamingResponse

REPORT_FILES = {"json": ("latest/sidecar-report.json", "application/json"),
                "md": ("latest/sidecar-report.md", "text/markdown; charset=utf-8"),
                "html": ("report.html", "text/html; charset=utf-8")}
# pytest-html's page runs its own inline script and styles: served sandboxed, as a
# document of no origin, it may, and it can reach nothing of the control plane's.
REPORT_CSP = "sandbox allow-scripts"
# A sandboxed document has no origin, so reading its Web Storage throws, and pytest-html's
# script keeps its filter state there: give it storage that lives as long as the page.
STORAGE_SHIM = (
    b"<script>(function(){for(const name of ['sessionStorage','localStorage']){"
    b"try{window[name].length}catch(e){const m=new Map();"
    b"Object.defineProperty(window,name,{configurable:true,value:{"
    b"getItem:k=>m.has(k)?m.get(k):null,setItem:(k,v)=>{m.set(k,String(v))},"
    b"removeItem:k=>{m.delete(k)},clear:()=>m.clear(),key:i=>[...m.keys()][i]??null,"
    b"get length(){return m.size}}})}}})();</script>")
LOG_FILE = "pytest.log"
LOG_POLL_S = 0.2


def report_response(path: str, fmt: str, run_id: str, download: bool) -> Response:
    """A run's report as a document: its own media type (UTF-8 text), the HTML page
    sandboxed, and as an attachment when asked for a download."""
    _name, media = REPORT_FILES[fmt]
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{run_id}-report.{fmt}"'
    if fmt != "html":
        return FileResponse(path, media_type=media, headers=headers)
    headers["Content-Security-Policy"] = REPORT_CSP
    with open(path, "rb") as handle:
        page = handle.read()
    head = page.find(b"<head>")
    if head >= 0 and not download:
        page = page[:head + 6] + STORAGE_SHIM + page[head + 6:]
    return Response(page, media_type=media, headers=headers)


def log_response(path: str, active: Callable[[], bool]) -> Response:
    """pytest's output: what is written so far, then what follows while the run is
    active (a chunked text/plain body that ends with the run)."""
    return StreamingResponse(follow_file(path, active),
                             media_type="text/plain; charset=utf-8",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                      "X-Content-Type-Options": "nosniff"})


async def follow_file(path: str, active: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The file's bytes as they are written, until the writer is done and all is read."""
    offset = 0
    while True:
        running = active()  # asked first: what is written before it ends is still read
        chunk = await asyncio.to_thread(_read_from, path, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        if not running:
            return
        await asyncio.sleep(LOG_POLL_S)


def _read_from(path: str, offset: int, most: int = 65536) -> bytes:
    if not os.path.isfile(path):
        return b""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(most)
