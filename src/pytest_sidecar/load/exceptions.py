"""The one root of the load engine's own exceptions (its HTTP client's protocol errors), so
a caller can catch everything this package raises in one `except LoadError`, as
chaostoolkit-lib's `exceptions.py` does. Each exception lives beside the code that raises
it and derives from this root (and from the builtin it always was, so existing handlers
still catch it)."""

from __future__ import annotations

__all__ = ["LoadError"]


class LoadError(Exception):
    """Raised by the load engine; see the subclasses beside the code that raises them."""
