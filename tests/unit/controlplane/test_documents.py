"""What the control plane serves as documents: a log followed while its run is active and
read to its end after, and the HTML report sandboxed with storage that works there."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pytest_sidecar.controlplane.documents import STORAGE_SHIM, follow_file, report_response


def test_a_log_is_followed_while_active_then_read_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "pytest.log"
    log.write_bytes(b"collected 2 items\n")
    polls = {"n": 0}

    def active() -> bool:
        polls["n"] += 1
        if polls["n"] == 3:  # the run writes more, then ends
            with log.open("ab") as handle:
                handle.write(b"2 passed\n")
        return polls["n"] < 4

    async def read() -> bytes:
        return b"".join([chunk async for chunk in follow_file(str(log), active)])

    assert asyncio.run(read()) == b"collected 2 items\n2 passed\n"


def test_the_html_report_is_sandboxed_with_storage_and_downloads_as_is(
        tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_bytes(b"<html><head><title>t</title></head><body></body></html>")
    shown = report_response(str(page), "html", "0123456789ab", download=False)
    assert shown.headers["content-security-policy"] == "sandbox allow-scripts"
    assert bytes(shown.body).startswith(b"<html><head>" + STORAGE_SHIM)
    saved = report_response(str(page), "html", "0123456789ab", download=True)
    assert saved.body == page.read_bytes()
    assert saved.headers["content-disposition"] == \
        'attachment; filename="0123456789ab-report.html"'
