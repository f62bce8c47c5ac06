"""sidecar-load against a real reference stack: two shards, merged exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_sidecar.load.cli import main
from pytest_sidecar.stack.embedded import EmbeddedStack


def test_two_shards_run_for_real_and_merge_exactly(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stack = EmbeddedStack(str(tmp_path / "stack"))
    target = stack.ensure_started()
    try:
        for shard in ("0/2", "1/2"):
            assert main(["run", "--target-file", target, "--rate", "60", "--duration", "1",
                         "--arrivals", "constant", "--attach-rate", "0.5", "--token-mix",
                         "0.2", "--shard", shard,
                         "--out", str(tmp_path / f"run-{shard[0]}")]) == 0
    finally:
        stack.stop()
    shards = [json.loads((tmp_path / f"run-{i}" / "summary.json").read_text()) for i in "01"]
    assert [s["offered"] for s in shards] == [30, 30], "each shard offers half of 60/s for 1 s"
    assert all(s["dropped"] == 0 and s["completed"] == s["sent"] for s in shards)
    assert main(["merge", "--out", str(tmp_path / "merged"),
                 str(tmp_path / "run-0"), str(tmp_path / "run-1")]) == 0
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert merged["offered"] == 60 and merged["shards"] == 2
    chat = sum(s["lanes"]["chat"]["status"]["2xx"] for s in shards)
    assert merged["lanes"]["chat"]["status"]["2xx"] == chat == 60
    explained = sum(sum(s["explained"].values()) for s in shards)
    lanes = {k: v for k, v in merged["lanes"].items() if k.startswith("explain:")}
    assert sum(sum(v["status"].values()) for v in lanes.values()) == explained > 0
    capsys.readouterr()
    assert main(["merge", "--out", str(tmp_path / "merged"), str(tmp_path / "run-0")]) == 2
    assert "is not empty: a run directory is never appended to" in capsys.readouterr().err
