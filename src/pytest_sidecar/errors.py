"""The one root of pytest-sidecar's own exceptions (the plugin, its fixtures, the target
file, the embedded stack's launch and the manifests), so a caller can catch everything
this package raises in one `except SidecarError`, as chaostoolkit-lib's `exceptions.py`
does. Each exception lives beside the code that raises it and derives from this root (and
from the builtin it always was, so existing handlers still catch it)."""

from __future__ import annotations

__all__ = ["SidecarError"]


class SidecarError(Exception):
    """Raised by pytest-sidecar; see the subclasses beside the code that raises them."""
