"""Per-process plugin state: role (controller or xdist worker) and the resolved target.

The target is resolved lazily and once per process; probe results are cached too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pytest

from .config import SidecarConfig
from .outcomes import FailReason, SkipReason, fail, skip
from .target import Target, TargetFileError, apply_overrides, load_target_file, target_from_url
from .vocabulary.redaction import Redactor

if TYPE_CHECKING:
    from .embedded import EmbeddedStack
    from .probes import Probe

STATE_KEY = pytest.StashKey["SidecarState"]()
WORKERINPUT_KEY = "sidecar"


def is_controller(config: pytest.Config) -> bool:
    """True in the process that owns the session (no xdist, or the xdist controller)."""
    return not hasattr(config, "workerinput")


def worker_id(config: pytest.Config) -> str:
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    return str(workerinput.get("workerid", "controller"))


@dataclass
class SidecarState:
    config: SidecarConfig
    shared_dir: str
    owner_pid: int
    run_id: str
    # This run's own directory under the report root (rundirs.py): every file it writes.
    run_dir: str = ""
    redactor: Redactor = field(default_factory=Redactor)
    _target: Target | None = None
    _unreachable: str | None = None
    # The probes plugins add (hookspecs.pytest_sidecar_probes), asked on the first probe.
    plugin_probes: Callable[[], Mapping[str, Probe]] = dict
    _probes: dict[str, str | None] = field(default_factory=dict)
    _probe_table: dict[str, Probe] | None = None

    def __post_init__(self) -> None:
        self.redactor.add(v for v in (self.config.token_write, self.config.token_read,
                                      self.config.token_b_write, self.config.token_b_read) if v)

    @property
    def embedded_stack(self) -> EmbeddedStack:
        """The EmbeddedStack handle (only meaningful when config.embedded)."""
        from .embedded import EmbeddedStack

        return EmbeddedStack(os.path.join(self.shared_dir, "stack"), self.owner_pid)

    @property
    def resolved_target(self) -> Target | None:
        """The target if this process has resolved it already (never starts a stack)."""
        return self._target

    def load_explicit_target(self) -> Target | None:
        """Resolve a file/URL target (raises TargetFileError); None for embedded."""
        if self.config.target:
            base = load_target_file(self.config.target)
        elif self.config.url:
            base = target_from_url(self.config.url)
        else:
            return None
        return self._adopt(apply_overrides(base, self.config.explicit()))

    def _adopt(self, target: Target) -> Target:
        self._target = target
        self.redactor.add(target.secrets())
        return target

    def target(self) -> Target:
        """The target, starting the embedded stack on first use; fails/skips typed."""
        if self._target is None:
            from .embedded import StackStartError

            try:
                path = self.embedded_stack.ensure_started()
            except StackStartError as exc:
                fail(FailReason.STACK_FAILED, str(exc),
                     "run `sidecar-stack serve --target-file /tmp/t.json` to see why")
            base = load_target_file(path)
            self._adopt(apply_overrides(replace(base, origin="embedded"),
                                        self.config.explicit()))
        assert self._target is not None
        return self._target

    def reachable_target(self) -> Target:
        """The target, or a TARGET_UNREACHABLE skip (checked once per process)."""
        from .probes import reachability

        target = self.target()
        if self._unreachable is None:
            self._unreachable = reachability(target, self.config.timeout) or ""
        if self._unreachable:
            skip(SkipReason.TARGET_UNREACHABLE, self._unreachable,
                 "start the target or fix --sidecar-url / the target file", "§2.10")
        return target

    def final_target(self) -> Target | None:
        """The target as this run knew it, for the report: this process's, else (on an
        xdist controller, which never starts the embedded stack itself) the target file
        a worker's stack wrote; None when no process resolved one."""
        if self._target is not None or not self.config.embedded:
            return self._target
        path = self.embedded_stack.target_file
        try:
            target = load_target_file(path) if os.path.exists(path) else None
        except TargetFileError:
            return None
        if target is not None:
            self.redactor.add(target.secrets())
        return target

    def probe(self, capability: str) -> str | None:
        """None when the declared capability is really there, else the probe's one-line
        reason; each capability is probed once per process."""
        if self._probe_table is None:
            from .probes import PROBES

            self._probe_table = {**PROBES, **self.plugin_probes()}
        if capability not in self._probes:
            probe = self._probe_table.get(capability)
            try:
                result = probe(self.target(), self.config.timeout) if probe else None
            except Exception as exc:  # a probe that blows up is a failed probe, one line
                result = f"probe raised {type(exc).__name__}: {exc}".splitlines()[0]
            self._probes[capability] = result
        return self._probes[capability]
