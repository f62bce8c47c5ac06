"""Specs that need the machine alone run last, so the parallel phase is not broken up by
their waits; on the embedded stack those on a stack of their own run first."""

from __future__ import annotations

import pytest


def test_specs_on_own_stacks_come_first_and_those_that_run_alone_last(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order="""
        import pytest

        @pytest.mark.load
        def test_a_load(): pass

        def test_b_plain(): pass

        @pytest.mark.disruptive
        @pytest.mark.own_stack
        def test_c_own_stack(): pass

        @pytest.mark.throttle
        def test_d_throttle(): pass

        def test_e_plain(): pass
    """)
    result = pytester.runpytest("--collect-only", "-q")
    names = [line.split("::")[1] for line in result.outlines if "::" in line]
    assert names == ["test_c_own_stack", "test_b_plain", "test_e_plain", "test_a_load",
                     "test_d_throttle"]
