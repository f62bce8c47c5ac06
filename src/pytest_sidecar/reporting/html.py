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


def _value(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return _rows_table(value)  # a list of rows (a latency table): a table
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
