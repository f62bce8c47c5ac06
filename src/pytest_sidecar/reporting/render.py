"""Write the report model to sidecar-report.json and sidecar-report.md (atomically).

The report is built from the event log, which the redactor already cleaned on its way
to disk (reporting/events.py): what is written here carries no secret to redact.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ..atomic import write_atomic
from ..vocabulary.contract_doc import CONTRACT_DOC
from ..vocabulary.keys import REPORT_JSON, REPORT_MARKDOWN
from . import conformance_report, junit
from .markdown import render_markdown
from .types import Report


def _write_figures(report: Report, directory: str) -> None:
    """Write each result's SVG figures to a fresh figures/ and keep only their file names
    in the report. The directory is built aside and swapped in whole, so a figure of an
    earlier run never lingers beside this run's report."""
    staging = tempfile.mkdtemp(prefix=".figures-", dir=directory)
    os.chmod(staging, 0o755)  # reports are world-readable (mkdtemp makes 0700)
    for number, result in enumerate(report["results"]):
        for index, figure in enumerate(result.get("figures", [])):
            name = re.sub(r"[^A-Za-z0-9]+", "-", result["name"]).strip("-")[:80]
            filename = f"{number:03d}-{name}-{index}.svg"
            write_atomic(os.path.join(staging, filename), figure.pop("svg").encode())
            figure["file"] = f"figures/{filename}"
    final = os.path.join(directory, "figures")
    retired = f"{staging}.old"
    if os.path.isdir(final):
        os.rename(final, retired)
    if os.listdir(staging):
        os.rename(staging, final)
    else:
        os.rmdir(staging)
    shutil.rmtree(retired, ignore_errors=True)


def contract_document() -> bytes | None:
    """docs/contract.md: shipped in the wheel as pytest_sidecar/contract.md, read from
    the repository in a source checkout."""
    packaged = resources.files("pytest_sidecar").joinpath(CONTRACT_DOC)
    if packaged.is_file():
        return packaged.read_bytes()
    checkout = Path(__file__).resolve().parents[3] / "docs" / CONTRACT_DOC
    return checkout.read_bytes() if checkout.is_file() else None


def write_reports(report: Report, directory: str,
                  extra_sections: Sequence[Sequence[str]] = ()) -> list[str]:
    """Atomically write the JSON and Markdown reports (figures as files beside them, and
    the contract their section links point into), conformance-report.yaml and junit.xml;
    returns the reports' paths. `report` is left as it was."""
    os.makedirs(directory, exist_ok=True)
    contract = contract_document()
    if contract is not None:
        write_atomic(os.path.join(directory, CONTRACT_DOC), contract)
    written = copy.deepcopy(report)
    _write_figures(written, directory)
    paths = [os.path.join(directory, REPORT_JSON), os.path.join(directory, REPORT_MARKDOWN)]
    write_atomic(paths[0], (json.dumps(written, indent=2, default=str) + "\n").encode())
    write_atomic(paths[1], render_markdown(written, extra_sections).encode())
    for name, body in ((conformance_report.FILENAME,
                        conformance_report.render_conformance_report(written).encode()),
                       (junit.FILENAME, junit.render_junit(written))):
        write_atomic(os.path.join(directory, name), body)
    return paths
