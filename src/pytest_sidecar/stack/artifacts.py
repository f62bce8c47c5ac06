"""Artifact store: gzip HIF files under a file:// root (CONTRACT §7 layout)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import time
from typing import Any

from ..atomic import write_atomic

PREFIX = "traces"


def artifact_key(trace_id: str, granularity: str, featureset: str, model_hash: str,
                 when: float) -> str:
    day = time.strftime("%Y/%m/%d", time.gmtime(when))
    return f"{PREFIX}/{day}/{trace_id}/{granularity}-{featureset}-{model_hash}.hif.json.gz"


class ArtifactStore:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    @property
    def url(self) -> str:
        return "file://" + self.root

    def path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def put(self, key: str, graph: dict[str, Any]) -> None:
        # mtime=0 keeps the gzip bytes deterministic for a given graph.
        data = gzip.compress(json.dumps(graph, separators=(",", ":")).encode(), mtime=0)
        write_atomic(self.path(key), data)

    def get_gzip(self, key: str) -> bytes:
        with open(self.path(key), "rb") as handle:
            return handle.read()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))
