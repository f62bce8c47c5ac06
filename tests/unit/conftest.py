"""The unit self-tests hold the machine shared (tests/machine.py): some start reference
stacks or time a fault proxy, and the load self-test must have the machine to itself."""

from tests.machine import shared_machine  # noqa: F401 (autouse: the machine lock)
