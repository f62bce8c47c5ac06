"""The one root of the reference stack's own exceptions (its settings, its gateway's
answers, the upstream, the store), so a caller can catch everything this package raises
in one `except StackError`, as chaostoolkit-lib's `exceptions.py` does. Each exception
lives beside the code that raises it and derives from this root (and from the builtin it
always was, so existing handlers still catch it)."""

from __future__ import annotations

__all__ = ["StackError"]


class StackError(Exception):
    """Raised by the reference stack; see the subclasses beside the code that raises them."""
