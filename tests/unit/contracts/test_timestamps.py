"""Timestamps as the contract fixes them (contracts/timestamps.py): RFC 3339 in UTC."""

from __future__ import annotations

import pytest

from pytest_sidecar.contracts.timestamps import is_rfc3339, timestamp_error


@pytest.mark.parametrize("value", ["2026-12-01T12:00:00Z", "2026-12-01T12:00:00.123456+00:00",
                                   "2026-12-01t12:00:00z"])
def test_utc_times_pass(value: str) -> None:
    assert timestamp_error("ts", value) is None


@pytest.mark.parametrize("value,why", [
    ("2026-12-01T12:00:00", "offset"),  # naive
    (1764590400, "offset"),  # epoch seconds
    ("2026-12-01", "offset"),  # a date
    ("2026-12-01T13:00:00+01:00", "UTC"),  # the right instant, another zone
    ("soon", "offset"),
])
def test_naive_epoch_and_zoned_times_fail_naming_the_field(value: object, why: str) -> None:
    error = timestamp_error("created_at", value)
    assert error is not None and error.startswith("created_at ") and why in error


def test_an_offset_is_required_for_rfc3339() -> None:
    assert is_rfc3339("2026-12-01T12:00:00+05:30")
    assert not is_rfc3339("2026-12-01T12:00:00")
