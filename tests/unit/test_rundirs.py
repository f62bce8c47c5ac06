"""rundirs: one directory per run, the `latest` pointer, pruning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_sidecar import rundirs


def make(root: Path, run_id: str, started: float) -> Path:
    path = rundirs.run_dir(root, run_id, started)
    path.mkdir(parents=True)
    return path


def test_names_sort_by_start_time_and_carry_the_run_id(tmp_path: Path) -> None:
    assert rundirs.run_dir_name("abc123", 0) == "19700101T000000.000000Z-abc123"
    assert rundirs.run_dir_name("abc123", 1.25) == "19700101T000001.250000Z-abc123"
    older, newer = make(tmp_path, "ffff", 100), make(tmp_path, "0000", 200)
    assert rundirs.finished_runs(tmp_path) == [older, newer]


def test_latest_is_a_relative_link_replaced_atomically(tmp_path: Path) -> None:
    assert rundirs.latest_run(tmp_path) is None
    first, second = make(tmp_path, "aa", 1), make(tmp_path, "bb", 2)
    rundirs.point_latest(tmp_path, first)
    rundirs.point_latest(tmp_path, second)
    pointer = tmp_path / rundirs.LATEST
    assert os.readlink(pointer) == f"runs/{second.name}"  # survives moving the root
    assert rundirs.latest_run(tmp_path) == second.resolve()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_latest_falls_back_to_a_text_file_without_symlinks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make(tmp_path, "aa", 1)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("symbolic links are not supported here")

    monkeypatch.setattr(os, "symlink", refuse)
    rundirs.point_latest(tmp_path, run)
    assert (tmp_path / rundirs.LATEST).read_text() == f"runs/{run.name}\n"
    assert rundirs.latest_run(tmp_path) == run


def test_prune_keeps_the_newest_the_current_and_the_latest(tmp_path: Path) -> None:
    runs = [make(tmp_path, f"{n:02x}", n) for n in range(5)]
    (tmp_path / rundirs.RUNS / "not-a-run").mkdir()  # never ours to remove
    rundirs.point_latest(tmp_path, runs[0])
    removed = rundirs.prune(tmp_path, keep=2, current=runs[1])
    assert removed == [runs[2]]
    assert sorted(p.name for p in (tmp_path / rundirs.RUNS).iterdir()) == sorted(
        [runs[0].name, runs[1].name, runs[3].name, runs[4].name, "not-a-run"])
