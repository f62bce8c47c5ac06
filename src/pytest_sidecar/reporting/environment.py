"""The environment section: Python, packages and tools with their versions."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("pytest-sidecar", "pytest", "pytest-xdist", "pytest-asyncio", "pytest-html",
            "httpx", "starlette", "uvicorn", "jsonschema", "prometheus-client", "pyyaml")
TOOLS = {"helm": ["version", "--short"], "kubectl": ["version", "--client=true"],
         "git": ["--version"], "wrk": ["--version"]}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _tool(name: str, args: list[str]) -> str:
    path = shutil.which(name)
    if path is None:
        return "not found"
    try:
        done = subprocess.run([path, *args], capture_output=True, text=True, timeout=5)
        first = (done.stdout or done.stderr).strip().splitlines()
        return f"{path} ({first[0][:80]})" if first else path
    except (OSError, subprocess.TimeoutExpired):
        return f"{path} (version unknown)"


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "tools": {name: _tool(name, args) for name, args in TOOLS.items()},
    }
