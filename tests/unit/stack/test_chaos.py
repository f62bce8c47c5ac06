"""The reference stack's chaos control (CONTRACT §7): leases, tenant scope, percent."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pytest_sidecar.stack.chaos import ChaosControl


def control(tmp_path: Path, flags: dict[str, object]) -> ChaosControl:
    path = tmp_path / "chaos.json"
    path.write_text(json.dumps(flags))
    chaos = ChaosControl(str(path))
    chaos.reload()
    return chaos


def test_a_lapsed_lease_turns_a_flag_off(tmp_path: Path) -> None:
    chaos = control(tmp_path, {
        "drop-s3": {"enabled": True, "expires_at": time.time() - 1},
        "slow-sae": {"enabled": True, "expires_at": time.time() + 60, "jitter_ms": 5},
        "dependency-outage": {"enabled": True, "dependency": "upstream",
                              "expires_at": time.time() - 1}})
    assert chaos.flag("drop-s3") is None and chaos.hits("drop-s3") is None
    slow = chaos.flag("slow-sae")
    assert slow is not None
    assert chaos.hits("slow-sae") == {"enabled": True, "expires_at": slow["expires_at"],
                                      "jitter_ms": 5}
    assert not chaos.outage("upstream")


def test_tenant_scope_and_percent(tmp_path: Path) -> None:
    chaos = control(tmp_path, {
        "upstream-errors": {"enabled": True, "status": 500, "tenants": ["tenant-a"]},
        "fail-attribution": {"enabled": True, "percent": 30}})
    assert chaos.hits("upstream-errors", "tenant-a") is not None
    assert chaos.hits("upstream-errors", "tenant-b") is None
    chaos._random.seed(7)
    share = sum(chaos.hits("fail-attribution") is not None for _ in range(4000)) / 4000
    assert 0.27 < share < 0.33, share


def test_an_invalid_file_keeps_the_last_good_flags(tmp_path: Path) -> None:
    chaos = control(tmp_path, {"drop-s3": {"enabled": True}})
    path = Path(chaos.path)
    path.write_text("{not json")
    chaos._seen = None  # as if the file changed
    chaos.reload()
    assert chaos.flag("drop-s3") is not None


def test_a_flag_written_just_before_a_lookup_is_in_force(tmp_path: Path) -> None:
    """Read on use, not on a poll: each write (a temp file renamed into place, as the
    suite's writers do) is seen by the very next lookup, 20 times in a row."""
    from pytest_sidecar.chaos.actions import inject_flag, rollback_flag

    path = str(tmp_path / "chaos.json")
    chaos = ChaosControl(path)
    chaos.start()
    for _ in range(20):
        inject_flag(path, "fail-attribution", {"mode": "fail"}, lease_s=30)
        assert chaos.hits("fail-attribution") is not None
        rollback_flag(path, "fail-attribution")
        assert chaos.hits("fail-attribution") is None
