"""Timestamps as docs/contract.md §2 fixes them: RFC 3339 strings in UTC.

A naive time (no offset), another offset, or epoch seconds are all errors: each is a
real gateway slip that sorts or compares wrongly on the client's side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def parse_rfc3339(text: Any) -> datetime | None:
    """The instant an RFC 3339 date-time string names (with its offset), else None."""
    # jsonschema only checks "date-time" when an optional package is installed, so the
    # timestamp is checked here, unconditionally.
    if not isinstance(text, str) or "T" not in text.upper():
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def is_rfc3339(text: Any) -> bool:
    """True for an RFC 3339 date-time string with an offset (e.g. 2026-12-01T12:00:00Z)."""
    return parse_rfc3339(text) is not None


def timestamp_error(name: str, value: Any) -> str | None:
    """None when `value` is an RFC 3339 UTC time, else what is wrong, naming `name`."""
    parsed = parse_rfc3339(value)
    if parsed is None:
        return f"{name} {value!r} is not an RFC 3339 time with an offset"
    if parsed.utcoffset() != timedelta(0):
        return f"{name} {value!r} is not in UTC (Z or +00:00)"
    return None
