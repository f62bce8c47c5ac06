"""The detection matrix: run the suite against the reference stack switched to one opt-in
defect at a time (stack/defects.py) and judge what failed.

A defect is caught when at least one spec it names fails, and clean when every failure
is either a spec it names or a typed DECLARED_BUT_MISSING line citing the defect's own
clause (a shared precondition, grouped as one root cause in the report). Anything else
is a cascade: a spec failing for a clause it does not certify.

    python -m tests.detection.matrix [--markdown] [--json F] [--rejudge F] [DEFECT ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_sidecar.stack.defects import DEFECTS, ENV

from .expectations import EXPECTED

ROOT = Path(__file__).resolve().parents[2]
# Platform specs read manifests, not the target; fuzzing is slow and judged by its own
# spec list. Everything else of the suite runs against each defect.
SELECTION = ["tests/e2e", "tests/chaos", "-m", "not platform and not fuzz"]


@dataclass
class Verdict:
    """What the suite did against one defect."""

    defect: str
    failed: dict[str, str] = field(default_factory=dict)  # nodeid -> reason line
    expected_failed: list[str] = field(default_factory=list)
    precondition: list[str] = field(default_factory=list)
    cascade: list[str] = field(default_factory=list)
    passed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def caught(self) -> bool:
        return bool(self.expected_failed)

    @property
    def clean(self) -> bool:
        return self.caught and not self.cascade


def cites(reason: str, clause: str) -> bool:
    """The typed line ends citing the clause: `(contract §2.3)` (or, in logs written
    before docs/contract.md, `(CONTRACT §2.3)`)."""
    return f"(contract {clause}" in reason or f"(CONTRACT {clause}" in reason


def typed_precondition(result: dict[str, Any]) -> bool:
    """A DECLARED_BUT_MISSING failure (by its code, or its line when only that is kept)."""
    reason = (result.get("reason") or "").removeprefix("Failed: ")
    return result.get("reason_code") == "DECLARED_BUT_MISSING" or reason.startswith(
        "DECLARED_BUT_MISSING")


def judge(defect: str, results: list[dict[str, Any]], seconds: float = 0.0) -> Verdict:
    """Sort one run's results into caught / precondition / cascade for `defect`."""
    clause = DEFECTS[defect].clause
    wanted = EXPECTED[defect]
    verdict = Verdict(defect, seconds=round(seconds, 1))
    for result in results:
        if result["outcome"] == "passed":
            verdict.passed += 1
        elif result["outcome"] == "skipped":
            verdict.skipped += 1
        elif result["outcome"] in ("failed", "error"):
            nodeid, reason = result["nodeid"], result.get("reason") or ""
            verdict.failed[nodeid] = reason
            if any(spec in nodeid for spec in wanted):
                verdict.expected_failed.append(nodeid)
            elif typed_precondition(result) and cites(reason, clause):
                verdict.precondition.append(nodeid)
            else:
                verdict.cascade.append(nodeid)
    return verdict


def run(defect: str, workers: int = 2, timeout: float = 600.0) -> Verdict:
    """Run the selection against an embedded stack with `defect` switched on."""
    with tempfile.TemporaryDirectory(prefix=f"detect-{defect}-") as reports:
        env = {**os.environ, ENV: defect}
        command = [sys.executable, "-m", "pytest", *SELECTION, "-q", "-p", "no:cacheprovider",
                   "-p", "no:randomly", f"--sidecar-report-dir={reports}"]
        if workers:
            command += ["-n", str(workers)]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        elapsed = time.monotonic() - started
        report = json.loads((Path(reports) / "latest" / "sidecar-report.json").read_text())
    return judge(defect, report["results"], elapsed)


def rejudge(saved: dict[str, Any]) -> Verdict:
    """A saved verdict judged again: its failures against the current expectations."""
    results = [{"nodeid": n, "outcome": "failed", "reason": r} for n, r in saved["failed"].items()]
    results += [{"nodeid": "", "outcome": "passed"}] * saved["passed"]
    results += [{"nodeid": "", "outcome": "skipped"}] * saved["skipped"]
    return judge(saved["defect"], results, saved["seconds"])


def markdown(verdicts: list[Verdict]) -> str:
    """The matrix as a Markdown table (docs/detection.md)."""
    lines = ["| defect | clause | caught by | precondition | cascade |",
             "|---|---|---|---|---|"]
    for v in verdicts:
        caught = ", ".join(f"`{n.split('::', 1)[1]}`" for n in sorted(v.expected_failed))
        caught = caught or "**missed**"
        lines.append(f"| `{v.defect}` | {DEFECTS[v.defect].clause} | {caught} | "
                     f"{len(v.precondition)} | {len(v.cascade)} |")
    caught = sum(v.caught for v in verdicts)
    cascade = sum(len(v.cascade) for v in verdicts)
    lines.append("")
    lines.append(f"Caught {caught} / {len(verdicts)}; unrelated failures (cascade): {cascade}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.detection.matrix",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("defects", nargs="*", help="defects to run (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print the table")
    parser.add_argument("--json", help="write the verdicts to this file")
    parser.add_argument("--rejudge", metavar="JSON", help="judge the failures saved by an "
                        "earlier --json again with the current expectations (no run)")
    args = parser.parse_args(argv)
    saved = {v["defect"]: v for v in json.loads(Path(args.rejudge).read_text())} \
        if args.rejudge else {}
    names = args.defects or list(saved or DEFECTS)
    verdicts = []
    for name in names:
        verdict = rejudge(saved[name]) if saved else run(name)
        verdicts.append(verdict)
        status = "clean" if verdict.clean else ("CASCADE" if verdict.caught else "MISSED")
        print(f"{name:36} {status:8} expected={len(verdict.expected_failed)} "
              f"precondition={len(verdict.precondition)} cascade={verdict.cascade} "
              f"{verdict.seconds}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([v.__dict__ for v in verdicts], indent=1))
    if args.markdown:
        print(markdown(verdicts))
    return 0 if all(v.clean for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
