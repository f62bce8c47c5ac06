"""What pytest-html shows of a test: its evidence as readable tables, inline (a `data:`
link is blocked by browsers and held double-encoded JSON), and for a failure the clauses
it certifies. Everything is escaped: evidence holds what a target answered."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..vocabulary.contract_doc import link

_MAX_CELL = 300


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape(text if len(text) <= _MAX_CELL else text[:_MAX_CELL] + "…")


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns)
                   + "</tr>" for row in rows)
    return f'<table class="sidecar-rows"><tr>{head}</tr>{body}</table>'


def _value(value: Any, depth: int = 0) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _rows_table(value)  # a list of rows (a latency table): a table
    if isinstance(value, dict) and value and depth < 2:
        # An SLO verdict, a usage object: name and value, not a JSON dict to decipher.
        rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{_value(v, depth + 1)}</td></tr>"
                       for k, v in value.items())
        return f'<table class="sidecar-fields">{rows}</table>'
    return _cell(value)


def evidence_html(facts: Sequence[Mapping[str, Any]]) -> str:
    """Each recorded evidence item as a two-column table (name, value)."""
    tables = []
    for item in facts:
        rows = "".join(f"<tr><th>{escape(str(key))}</th><td>{_value(value)}</td></tr>"
                       for key, value in item.items())
        tables.append(f'<table class="sidecar-evidence">{rows}</table>')
    return '<div class="sidecar"><h4>Evidence</h4>' + "".join(tables) + "</div>"


def _section_link(ref: str, contract_doc: str) -> str:
    href = link(ref, contract_doc)
    return f'<a href="{escape(href)}">{escape(ref)}</a>' if href else escape(ref)


def failure_html(contract: Sequence[str], clauses: Sequence[str], reproduce: str | None,
                 contract_doc: str) -> str:
    """What a failed spec certifies (linked to the contract's sections), so a reader knows
    which clause the target broke, and its last request as a curl command."""
    parts = []
    if clauses:
        parts.append("clauses " + ", ".join(escape(c) for c in clauses))
    if contract:
        parts.append("sections " + ", ".join(_section_link(c, contract_doc) for c in contract))
    out = '<div class="sidecar"><h4>Certifies</h4><p>' + "; ".join(parts or ["-"]) + "</p>"
    if reproduce:
        out += ("<h4>Reproduce</h4><p>Its last request (set the token variables first):</p>"
                f'<pre class="sidecar-reproduce">{escape(reproduce)}</pre>')
    return out + "</div>"


def figure_html(name: str, svg: str) -> str:
    """A figure drawn inline: our own SVG (reporting/plot.py, labels escaped there), so
    it shows in the row itself rather than behind a link."""
    return f'<div class="sidecar"><h4>{escape(name)}</h4>{svg}</div>'


# The verdict block's colours: pytest-html's own summary text is a pale grey.
_STYLE = """<style>
.sidecar-verdict li, .sidecar-profiles td, .sidecar-llm td { color: #222; }
.sidecar-verdict .ok, .sidecar-profiles .ok { color: #1a7f37; font-weight: 600; }
.sidecar-verdict .bad, .sidecar-profiles .bad { color: #cf222e; font-weight: 600; }
.sidecar-verdict .open, .sidecar-profiles .open { color: #9a6700; }
.sidecar-profiles, .sidecar-llm { border-collapse: collapse; margin: 0.5em 0; }
.sidecar-profiles th, .sidecar-profiles td, .sidecar-llm th, .sidecar-llm td {
  border: 1px solid #ddd; padding: 2px 8px; }
</style>"""


def _tone(text: str) -> str:
    if "✗" in text or "not conformant" in text or "FAIL" in text:
        return "bad"
    if "✓" in text:
        return "ok"
    return "open"


def summary_html(lines: Sequence[str], profiles: Mapping[str, str],
                 conformance: Mapping[str, Mapping[str, Any]],
                 causes: Sequence[Mapping[str, Any]],
                 actions: Sequence[Mapping[str, Any]],
                 coverage: Mapping[str, Any] | None = None) -> list[str]:
    """What pytest-html shows above everything else: the verdict lines in colour, the
    profiles table (with the contract's clauses asserted and held), the root causes and
    the next actions."""
    from .verdict import MARK

    parts = [_STYLE, '<h2>Verdict</h2><ul class="sidecar-verdict">' + "".join(
        f'<li class="{_tone(line)}">{escape(line)}</li>' for line in lines) + "</ul>"]
    clauses = (coverage or {}).get("profiles", {})

    def clause_cell(name: str) -> str:
        found = clauses.get(name)
        return (f"{found['held']} held / {found['asserted']} asserted / {found['clauses']}"
                if found else "–")

    rows = "".join(
        f'<tr><td>{escape(name)}</td><td class="{_tone(MARK.get(verdict, "") + verdict)}">'
        f"{escape(MARK.get(verdict, ''))} {escape(verdict)}</td>"
        f"<td>{row['tests']}</td><td>{row['passed']}</td>"
        f"<td>{row['failed'] + row['error']}</td><td>{row['skipped']}</td>"
        f"<td>{clause_cell(name)}</td></tr>"
        for name, verdict in profiles.items() if (row := conformance.get(name)))
    parts.append('<h2>Profiles</h2><table class="sidecar-profiles"><tr><th>profile</th>'
                 "<th>verdict</th><th>tests</th><th>passed</th><th>failed</th>"
                 f"<th>skipped</th><th>contract clauses</th></tr>{rows}</table>")
    if causes:
        parts.append("<h2>Root causes</h2><ol>" + "".join(
            f"<li><b>{cause['tests']} failing</b>: {escape(cause['cause'])}</li>"
            for cause in causes) + "</ol>")
    if actions:
        parts.append("<h2>Next actions</h2><ol>" + "".join(
            f"<li>{escape(a['action'])} ({a['tests']} test{'s' if a['tests'] != 1 else ''})"
            "</li>" for a in actions) + "</ol>")
    return parts


def page_title(url: str | None, profiles: Mapping[str, str], failing: int) -> str:
    """`pytest-sidecar — <target> — <verdict>`: what a browser tab or a CI artifact list
    shows before the page is opened."""
    verdicts = set(profiles.values())
    if failing or "not conformant" in verdicts:
        verdict = f"not conformant ({failing} failing)" if failing else "not conformant"
    elif "incomplete" in verdicts:
        verdict = "incomplete"
    elif "conformant" in verdicts:
        verdict = "conformant"
    else:
        verdict = "untested"
    return f"pytest-sidecar — {url or 'no target'} — {verdict}"


_ENVIRONMENT = (b'<div id="environment-header">', b'<table id="environment"></table>')


def verdict_first(page: bytes) -> bytes:
    """pytest-html's page with its Environment section moved below the results, so the
    verdict opens the page. It goes before the footer, whose script fills the table by
    id as it runs."""
    start = page.find(_ENVIRONMENT[0])
    end = page.find(_ENVIRONMENT[1], start)
    close = page.rfind(b"<footer>")
    if start < 0 or end < 0 or close < end:
        return page  # another pytest-html layout: leave it as it is
    end += len(_ENVIRONMENT[1])
    block = page[start:end]
    return page[:start] + page[end:close] + block + b"\n" + page[close:]
