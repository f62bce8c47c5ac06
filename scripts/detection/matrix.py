"""The detection matrix: run the suite against the reference stack switched to one opt-in
defect at a time (stack/defects.py) and judge what failed.

Judged exactly, both ways:
- caught: a spec listed for the defect failed with a reason citing the defect's own
  clause (the same section: `§2.1` is not `§2.10`, `§2` is not `§2.1`);
- miscited: a listed spec failed with a reason that cites other sections only;
- unmet: an entry of the defect's list that no failure matched (unless listed as
  may-fail, with a reason, in expectations.MAY_FAIL);
- precondition: an unlisted spec that failed typed (DECLARED_BUT_MISSING) citing the
  defect's own clause: a shared precondition, one root cause in the report;
- cascade: any other failure.
Clean is caught with nothing miscited, unmet or cascading.

    python -m scripts.detection.matrix [--markdown] [--json F] [--rejudge F] [DEFECT ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_sidecar.stack.defects import DEFECTS, ENV
from pytest_sidecar.stack.variants import ENV as VARIANTS_ENV
from pytest_sidecar.stack.variants import VARIANTS

from .expectations import EXPECTED, MAY_FAIL

ROOT = Path(__file__).resolve().parents[2]
# Platform specs read manifests, not the target; fuzzing is slow and judged by its own
# spec list. Everything else of the suite runs against each defect.
SELECTION = ["tests/e2e", "tests/chaos", "-m", "not platform and not fuzz"]

_SECTION = re.compile(r"§\d+(?:\.\d+)*")
# The reporter appends the sections a spec certifies to a bare assertion; that suffix
# says what the spec is about, not what its failure found, so it never counts as a cite.
_CERTIFIES = re.compile(r" \[certifies [^\]]*\]$")


@dataclass
class Verdict:
    """What the suite did against one defect."""

    defect: str
    failed: dict[str, str] = field(default_factory=dict)  # nodeid -> reason line
    expected_failed: list[str] = field(default_factory=list)
    miscited: list[str] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
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
        return self.caught and not (self.cascade or self.miscited or self.unmet)


def own_words(reason: str) -> str:
    """A failure's reason without the `[certifies …]` suffix the reporter adds."""
    return _CERTIFIES.sub("", reason)


def sections(reason: str) -> set[str]:
    """The contract sections a failure's own words cite."""
    return set(_SECTION.findall(own_words(reason)))


def cites(reason: str, clause: str) -> bool:
    """The failure's own words cite exactly this section (`§2.1` does not cite `§2.10`,
    nor `§2` `§2.1`); a typed line cites it as `(contract §2.3)`."""
    return clause in sections(reason)


def typed_precondition(result: dict[str, Any]) -> bool:
    """A DECLARED_BUT_MISSING failure (by its code, or its line when only that is kept)."""
    reason = (result.get("reason") or "").removeprefix("Failed: ")
    return result.get("reason_code") == "DECLARED_BUT_MISSING" or reason.startswith(
        "DECLARED_BUT_MISSING")


def in_selection(spec: str, selection: list[str]) -> bool:
    """Whether an expectation's spec is among the files a run selected (a directory
    selects every file under it)."""
    if selection == SELECTION:
        return True
    module = spec.split("::", 1)[0]
    return any(Path(chosen).name == module or (Path(chosen).is_dir() and any(
        Path(chosen).rglob(module))) for chosen in selection if not chosen.startswith("-"))


def judge(defect: str, results: list[dict[str, Any]], seconds: float = 0.0,
          selection: list[str] = SELECTION) -> Verdict:
    """Sort one run's results into caught / miscited / unmet / precondition / cascade;
    with a narrower `selection`, only its own expectations can go unmet."""
    clause = DEFECTS[defect].clause
    wanted = tuple(spec for spec in EXPECTED[defect] if in_selection(spec, selection))
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
                (verdict.expected_failed if cites(reason, clause)
                 else verdict.miscited).append(nodeid)
            elif typed_precondition(result) and cites(reason, clause):
                verdict.precondition.append(nodeid)
            else:
                verdict.cascade.append(nodeid)
    optional = MAY_FAIL.get(defect, {})
    verdict.unmet = [spec for spec in wanted if spec not in optional
                     and not any(spec in nodeid for nodeid in verdict.expected_failed)]
    return verdict


def suite_results(env: dict[str, str], label: str, workers: int = 2,
                  timeout: float = 900.0, selection: list[str] = SELECTION
                  ) -> tuple[list[dict[str, Any]], float]:
    """Run the selection against an embedded stack started with `env`; its results."""
    with tempfile.TemporaryDirectory(prefix=f"detect-{label}-") as reports:
        command = [sys.executable, "-m", "pytest", *selection, "-q", "-p", "no:cacheprovider",
                   "-p", "no:randomly", f"--sidecar-report-dir={reports}"]
        if workers:
            command += ["-n", str(workers)]
        started = time.monotonic()
        subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        elapsed = time.monotonic() - started
        report = json.loads((Path(reports) / "latest" / "sidecar-report.json").read_text())
    return report["results"], elapsed


def run(defect: str, workers: int = 2, timeout: float = 900.0,
        selection: list[str] = SELECTION) -> Verdict:
    """Run the selection against an embedded stack with `defect` switched on."""
    results, elapsed = suite_results({ENV: defect}, defect, workers, timeout, selection)
    return judge(defect, results, elapsed, selection)


@dataclass
class VariantVerdict:
    """What the suite did against one allowed variation: it must fail nothing and skip
    nothing but what the variation does not declare."""

    variant: str
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # skips other than NOT_DECLARED
    not_declared: int = 0
    passed: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.passed > 0 and not self.failed and not self.skipped


def judge_variant(variant: str, results: list[dict[str, Any]],
                  seconds: float = 0.0) -> VariantVerdict:
    """Sort one run's results against an allowed variation."""
    verdict = VariantVerdict(variant, seconds=round(seconds, 1))
    for result in results:
        reason = result.get("reason") or ""
        if result["outcome"] == "passed":
            verdict.passed += 1
        elif result["outcome"] in ("failed", "error"):
            verdict.failed[result["nodeid"]] = reason
        elif result.get("reason_code") == "NOT_DECLARED":
            verdict.not_declared += 1
        else:
            verdict.skipped[result["nodeid"]] = reason
    return verdict


def run_variant(variant: str, workers: int = 2, timeout: float = 900.0,
                selection: list[str] = SELECTION) -> VariantVerdict:
    """Run the selection against an embedded stack showing one allowed variation."""
    results, elapsed = suite_results({VARIANTS_ENV: variant}, variant, workers, timeout,
                                     selection)
    return judge_variant(variant, results, elapsed)


def rejudge(saved: dict[str, Any]) -> Verdict:
    """A saved verdict judged again: its failures against the current expectations."""
    results = [{"nodeid": n, "outcome": "failed", "reason": r} for n, r in saved["failed"].items()]
    results += [{"nodeid": "", "outcome": "passed"}] * saved["passed"]
    results += [{"nodeid": "", "outcome": "skipped"}] * saved["skipped"]
    return judge(saved["defect"], results, saved["seconds"])


def markdown(verdicts: list[Verdict]) -> str:
    """The matrix as a Markdown table (docs/detection.md)."""
    lines = ["| defect | clause | caught by | precondition | miscited | unmet | cascade |",
             "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        caught = ", ".join(f"`{n.split('::', 1)[1]}`" for n in sorted(v.expected_failed))
        caught = caught or "**missed**"
        lines.append(f"| `{v.defect}` | {DEFECTS[v.defect].clause} | {caught} | "
                     f"{len(v.precondition)} | {len(v.miscited)} | {len(v.unmet)} | "
                     f"{len(v.cascade)} |")
    caught_count = sum(v.caught for v in verdicts)
    clean = sum(v.clean for v in verdicts)
    cascade = sum(len(v.cascade) for v in verdicts)
    lines.append("")
    lines.append(f"Caught {caught_count} / {len(verdicts)} ({len(DEFECTS)} defects in all), clean "
                 f"{clean}; unrelated failures (cascade): {cascade}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.detection.matrix",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("defects", nargs="*", help="defects to run (default: all)")
    parser.add_argument("--variants", nargs="*", metavar="VARIANT",
                        help="run these allowed variations instead (none named: all, one by "
                        "one; 'all': every one together)")
    parser.add_argument("--markdown", action="store_true", help="print the table")
    parser.add_argument("--json", help="write the verdicts to this file")
    parser.add_argument("--rejudge", metavar="JSON", help="judge the failures saved by an "
                        "earlier --json again with the current expectations (no run)")
    parser.add_argument("--selection", nargs="+", metavar="PATH", default=SELECTION,
                        help="run these spec files instead of the whole suite (e.g. a new "
                        "module against every defect); only their expectations can go unmet")
    args = parser.parse_args(argv)
    if args.variants is not None:
        return main_variants(args.variants or list(VARIANTS), args.selection)
    saved = {v["defect"]: v for v in json.loads(Path(args.rejudge).read_text())} \
        if args.rejudge else {}
    names = args.defects or list(saved or DEFECTS)
    verdicts = []
    for name in names:
        verdict = rejudge(saved[name]) if saved else run(
            name, workers=2 if args.selection == SELECTION else 0, selection=args.selection)
        verdicts.append(verdict)
        status = "clean" if verdict.clean else ("INEXACT" if verdict.caught else "MISSED")
        print(f"{name:36} {status:8} expected={len(verdict.expected_failed)} "
              f"precondition={len(verdict.precondition)} miscited={verdict.miscited} "
              f"unmet={verdict.unmet} cascade={verdict.cascade} {verdict.seconds}s",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([v.__dict__ for v in verdicts], indent=1))
    if args.markdown:
        print(markdown(verdicts))
    return 0 if all(v.clean for v in verdicts) else 1


def main_variants(names: list[str], selection: list[str] = SELECTION) -> int:
    """Run the suite against each allowed variation; 0 when every one is clean."""
    verdicts = []
    for name in names:
        verdict = run_variant(name, workers=2 if selection == SELECTION else 0,
                              selection=selection)
        verdicts.append(verdict)
        print(f"{name:28} {'clean' if verdict.clean else 'FALSE ALARM':11} "
              f"passed={verdict.passed} not_declared={verdict.not_declared} "
              f"failed={sorted(verdict.failed)} skipped={sorted(verdict.skipped)} "
              f"{verdict.seconds}s", flush=True)
        for nodeid, reason in {**verdict.failed, **verdict.skipped}.items():
            print(f"    {nodeid}: {reason[:300]}", flush=True)
    return 0 if all(v.clean for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
