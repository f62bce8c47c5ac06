"""The one root of the chaos runner's and its fault backends' own exceptions
(experiments, toxics, the fault proxy's API), so a caller can catch everything this
package raises in one `except ChaosError`, as chaostoolkit-lib's `exceptions.py` does.
Each exception lives beside the code that raises it and derives from this root (and from
the builtin it always was, so existing handlers still catch it)."""

from __future__ import annotations

__all__ = ["ChaosError"]


class ChaosError(Exception):
    """Raised by the chaos package; as itself, a fault that could not be injected or
    rolled back (the message says why)."""
