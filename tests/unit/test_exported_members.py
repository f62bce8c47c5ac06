"""The package's public names: `__all__` is exactly what `pytest_sidecar` defines, and
importing it loads neither pytest nor httpx (so `sidecar-stack` and the control plane,
which import the package, stay free of both); and no two of its classes share a name."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest_sidecar


def test_all_is_exactly_the_public_names() -> None:
    public = sorted(name for name, value in vars(pytest_sidecar).items()
                    if not name.startswith("_") and not isinstance(value, types.ModuleType)
                    and name != "annotations")  # `from __future__ import annotations`
    assert pytest_sidecar.__all__ == public


def test_exports_are_eager() -> None:
    assert "__getattr__" not in vars(pytest_sidecar)
    missing = [name for name in pytest_sidecar.__all__ if name not in vars(pytest_sidecar)]
    assert missing == []


def test_the_types_specs_annotate_with_are_exported() -> None:
    for name in ("Evidence", "Traces", "HifValidator", "SidecarClient", "SidecarConfig",
                 "Target", "Tenant", "GatewayFactory", "Scraper", "MetricsFactory"):
        assert name in pytest_sidecar.__all__, name


def test_importing_the_package_loads_neither_pytest_nor_httpx() -> None:
    probe = ("import sys, pytest_sidecar, pytest_sidecar.stack.cli, "
             "pytest_sidecar.cli.controlplane; "
             "print(sorted(m for m in ('pytest', '_pytest', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_no_two_classes_share_a_name() -> None:
    """One word per idea: a class name says which one it is wherever it is read."""
    import ast
    from collections import Counter
    from pathlib import Path

    package = Path(pytest_sidecar.__file__).parent
    names = Counter(node.name for path in package.rglob("*.py")
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ClassDef))
    assert len(names) > 100, "the walk found too few classes to judge"
    assert [name for name, count in names.items() if count > 1] == []
