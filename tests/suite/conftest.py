"""The suite's own self-tests: its specs run through pytester against the embedded stack,
its defects and variations, mutated charts and restart commands."""

from tests.pytester_env import (  # noqa: F401 (fixtures and a hook, found here)
    hide_package,
    pytest_configure,
    scrubbed_env,
    shared_machine,
)
