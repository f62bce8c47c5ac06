"""Where the contract lives and how a report links to one of its sections.

The contract is `docs/contract.md` in the repository; every run copies it into its own
directory as `contract.md`, so the links of an attached report work offline. A section
`§2.1` has the anchor `s2-1`: the anchors are stable (tests/unit/vocabulary/test_contract_doc.py
keeps them), whatever the headings' wording becomes.
"""

from __future__ import annotations

import re

CONTRACT_DOC = "contract.md"  # its file name in docs/ and in each run's directory
_REF = re.compile(r"§(\d+(?:\.\d+)*)")


def anchor(ref: str) -> str | None:
    """`§2.10` (or `§2.10/ids`) → `s2-10`; None when `ref` names no section."""
    match = _REF.search(ref)
    return "s" + match[1].replace(".", "-") if match else None


def link(ref: str, document: str = CONTRACT_DOC) -> str | None:
    """`§2.1` → `contract.md#s2-1` (relative to the run's directory by default)."""
    target = anchor(ref)
    return f"{document}#{target}" if target else None


def sections_in(text: str) -> list[str]:
    """The `§n.m` references a text makes, in order, once each."""
    return list(dict.fromkeys(match[0] for match in _REF.finditer(text)))


def linkify_markdown(text: str, document: str = CONTRACT_DOC) -> str:
    """Every `§n.m` in `text` as a Markdown link to its section."""
    return _REF.sub(lambda m: f"[{m[0]}]({link(m[0], document)})", text)
