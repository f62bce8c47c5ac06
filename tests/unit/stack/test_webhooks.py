"""Webhook registrations at rest: a row each in the database, and a state directory that
kept them in the older `webhooks.json` keeps them across the move."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_sidecar.stack.records_db import RecordsDb
from pytest_sidecar.stack.store import StatusStore
from pytest_sidecar.stack.webhooks import WebhookDispatcher

HOOK = {"id": "wh_1", "trace_id": "t1", "tenant_id": "tA", "url": "http://127.0.0.1:9/h",
        "secret": None, "events": ["complete"]}


def test_registrations_in_the_older_json_document_move_into_the_database(
        tmp_path: Path) -> None:
    (tmp_path / "webhooks.json").write_text(json.dumps({"wh_1": HOOK}))
    store = StatusStore(str(tmp_path / "status.json"))
    dispatcher = WebhookDispatcher(str(tmp_path / "webhooks.db"), store, frozenset(), 0.1)
    dispatcher.load()
    assert dispatcher._hooks == {"wh_1": HOOK}
    assert RecordsDb(str(tmp_path / "webhooks.db"), dict).read() == {"wh_1": HOOK}
