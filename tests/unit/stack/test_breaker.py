"""The reference stack's upstream circuit breaker (CONTRACT §10), on a fake clock."""

from __future__ import annotations

from pytest_sidecar.stack.breaker import CLOSED, HALF_OPEN, OPEN, Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_the_threshold_fails_fast_then_half_opens_one_trial() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert breaker.admit() is None
        breaker.failed()
    assert breaker.state == CLOSED  # 2 < 3
    breaker.succeeded()  # a success resets the count
    for _ in range(3):
        assert breaker.admit() is None
        breaker.failed()
    assert breaker.state == OPEN
    clock.now = 4
    assert breaker.admit() == 6 and breaker.fast_failed == 1  # Retry-After: the rest
    clock.now = 10
    assert breaker.admit() is None and breaker.state == HALF_OPEN  # the one trial
    assert breaker.admit() == 1  # a second caller waits for the trial
    breaker.failed()
    assert breaker.state == OPEN and breaker.opened_at == 10  # a failed trial: again
    clock.now = 20
    assert breaker.admit() is None
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.admit() is None


def test_a_trial_abandoned_by_its_client_lets_the_next_one_try() -> None:
    clock = Clock()
    breaker = Breaker(failures=1, cooldown_s=1, clock=clock)
    breaker.admit()
    breaker.failed()
    clock.now = 1
    assert breaker.admit() is None
    breaker.released()
    assert breaker.admit() is None and breaker.state == HALF_OPEN
