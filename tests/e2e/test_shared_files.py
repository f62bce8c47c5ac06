"""The files a co-located target shares (CONTRACT §7): status store records carry their
fields and agree with the status API; the artifact a complete trace names is a gzip HIF
graph at the documented layout."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_sidecar import Evidence, Tenant, Traces
from pytest_sidecar.client import SidecarClient
from pytest_sidecar.fixtures.files import StatusDocument
from pytest_sidecar.target import Target
from pytest_sidecar.vocabulary.states import RANK

pytestmark = [pytest.mark.profile("resilience")]

RECORD_FIELDS = {"trace_id", "tenant_id", "state", "progress", "stage", "granularity",
                 "featureset", "created_at", "updated_at", "expires_at"}
# {prefix}/{YYYY}/{MM}/{DD}/{trace_id}/{granularity}-{sae}-{model_hash}.hif.json.gz
ARTIFACT = re.compile(r"(?:^|/)(?P<prefix>[^/]+)/\d{4}/\d{2}/\d{2}/(?P<trace>[^/]+)/"
                      r"(?P<granularity>sentence|token)-(?P<sae>.+)-(?P<hash>[^-/]+)"
                      r"\.hif\.json\.gz$")
STORE_LAG_S = 5.0  # how long the store may trail the status API after completion


def stored_record(store: StatusDocument, trace_id: str,
                  state: str | None = None) -> dict[str, Any] | None:
    """The store's record once it exists (and shows `state`, when one is named; bounded
    wait), else the last seen."""
    deadline = time.monotonic() + STORE_LAG_S
    record = None
    while time.monotonic() < deadline:
        record = store.records().get(trace_id)
        if record is not None and (state is None or record.get("state") == state):
            break
        time.sleep(0.05)
    return record


@pytest.mark.clause("§7/status-store")
@pytest.mark.needs("chat", "explain", "status_store")
def test_status_store_records_carry_their_fields(traces: Traces, status_store: StatusDocument,
                                                 gateway: SidecarClient, tenants: Mapping[str,
                                                 Tenant],
                                                 evidence: Evidence) -> None:
    # A record is on disk before the 200 (§5): a trace in any state is judged, so a
    # stalled explainer hides nothing of the store's shape.
    opened = traces.open(granularity="sentence")
    record = stored_record(status_store, opened.trace_id)
    assert record is not None, f"§7: trace {opened.trace_id} is not in the status store"
    missing = RECORD_FIELDS - set(record)
    assert not missing, f"§7: the status store record lacks {sorted(missing)}"
    expires = record["expires_at"]
    assert isinstance(expires, int | float) and expires > time.time(), (
        f"§7: expires_at {expires!r} is not epoch seconds in the future")
    if tenants.get("a"):
        assert record["tenant_id"] == tenants["a"].id, f"§7: tenant_id {record['tenant_id']!r}"
    api = gateway.status(opened.trace_id).json()
    differing = {k: (record.get(k), api.get(k)) for k in ("trace_id", "granularity",
                                                           "featureset")
                 if k in api and record.get(k) != api.get(k)}
    assert not differing, f"§7: the store and the status API disagree: {differing}"
    # The store may trail the API by a transition, never lead it.
    assert RANK.get(str(record.get("state")), 99) <= RANK.get(api.get("state"), -1), (
        f"§7: the store says {record.get('state')!r} while the API says {api.get('state')!r}")
    evidence.record(trace_id=opened.trace_id, fields=sorted(record), state=record["state"],
                    expires_in_s=round(expires - time.time()))


@pytest.mark.clause("§7/artifacts")
@pytest.mark.needs("chat", "explain", "artifacts")
def test_a_complete_trace_names_a_gzip_hif_artifact(traces: Traces, gateway: SidecarClient,
                                                    sidecar_target: Target,
                                                    evidence: Evidence) -> None:
    done = traces.complete(granularity="token", max_tokens=20)
    key = done.status.get("s3_key")
    assert isinstance(key, str) and key, f"§2.3: a complete trace has s3_key {key!r}"
    layout = ARTIFACT.search(key)
    assert layout, f"§7: s3_key {key!r} does not follow the artifact layout"
    assert layout["trace"] == done.trace_id, f"§7: s3_key {key!r} names another trace"
    ran = "sentence" if done.status.get("granularity_downgraded") else "token"  # §5 ladder
    assert layout["granularity"] == ran, f"§7: {key!r} for a {ran} explanation"
    root = Path(str(sidecar_target.artifacts).removeprefix("file://"))
    relative = key.removeprefix(str(sidecar_target.artifacts)).removeprefix(str(root))
    path = root / relative.lstrip("/")
    assert path.is_file(), f"§7: the artifact {key!r} is not under {root}"
    try:
        doc = json.loads(gzip.decompress(path.read_bytes()))
    except (OSError, ValueError) as exc:
        pytest.fail(f"§7: the artifact is not gzip JSON: {type(exc).__name__}", pytrace=False)
    # The graph's own validity is §4's matter (the lifecycle spec); this is the file's.
    assert isinstance(doc, dict) and isinstance(doc.get("nodes"), list), \
        "§7: the artifact holds no HIF graph"
    served = gateway.graph(done.trace_id).json()
    assert {n["id"] for n in doc["nodes"]} == {n["id"] for n in served.get("nodes", [])}, \
        "§7: the artifact and the served graph differ"
    evidence.record(trace_id=done.trace_id, s3_key=key, bytes=path.stat().st_size,
                    nodes=len(doc["nodes"]))
