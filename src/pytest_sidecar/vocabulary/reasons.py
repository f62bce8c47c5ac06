"""Typed reason codes: the closed set of skip and fail reasons, and their one-line form.

A skip or failure message is one line: `CODE: what happened; action: what enables it
(contract §x)`, §x being a section of docs/contract.md. The reporter parses the code
back out of the line, so the line format is the interface between tests and reports.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class SkipReason(enum.Enum):
    """Why a spec did not run. Under --sidecar-strict every one of these fails."""

    NOT_DECLARED = "the target does not declare a capability the spec needs"
    TOOL_MISSING = "a tool the spec needs is not installed on the runner"
    INSUFFICIENT_DATA = "too few samples to judge; no threshold passes on zero samples"
    TARGET_UNREACHABLE = "the target did not answer at all"


class FailReason(enum.Enum):
    """Why a spec failed before measuring what it certifies."""

    DECLARED_BUT_MISSING = "the target declares a capability but its probe failed"
    STACK_FAILED = "the embedded reference stack did not start"
    NO_EVIDENCE = "the spec passed without recording evidence"


_LINE = re.compile(r"^(?P<code>[A-Z_]+): (?P<text>.*?)(?:; action: (?P<action>.*?))?"
                   r"(?: \((?P<ref>(?:contract|CONTRACT) [^)]*)\))?$")


@dataclass(frozen=True)
class Outcome:
    """A parsed typed reason line."""

    code: str
    text: str
    action: str | None = None
    contract: str | None = None


def format_line(code: str, text: str, action: str | None = None, ref: str | None = None) -> str:
    """Build the one-line reason; newlines are folded so it stays one line."""
    line = f"{code}: {' '.join(text.split())}"
    if action:
        line += f"; action: {' '.join(action.split())}"
    if ref:
        line += f" (contract {ref})"
    return line


def parse_line(line: str) -> Outcome | None:
    """Parse a reason line back into its parts; None if it is not a typed line."""
    first = line.strip().splitlines()[0] if line.strip() else ""
    first = first.removeprefix("Skipped: ").removeprefix("Failed: ")
    match = _LINE.match(first)
    if not match or match["code"] not in _CODES:
        return None
    ref = match["ref"].split(" ", 1)[1] if match["ref"] else None
    return Outcome(match["code"], match["text"], match["action"], ref)


_CODES = {member.name for member in SkipReason} | {member.name for member in FailReason}


# A skip that --sidecar-strict turned into a failure keeps its typed line after this.
STRICT_PREFIX = "STRICT: "
