"""The one root of the control plane's own exceptions (its settings, its API's refusals,
launches and the run queue), so a caller can catch everything this package raises in one
`except ControlPlaneError`, as chaostoolkit-lib's `exceptions.py` does. Each exception
lives beside the code that raises it and derives from this root (and from the builtin it
always was, so existing handlers still catch it)."""

from __future__ import annotations

__all__ = ["ControlPlaneError"]


class ControlPlaneError(Exception):
    """Raised by the control plane; see the subclasses beside the code that raises them."""
