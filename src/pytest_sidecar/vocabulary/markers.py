"""The suite's markers: their registration lines, the groups -m selects, and those that
run alone."""

from __future__ import annotations

# Marker groups a run can select with -m; under --sidecar-strict a selected group that
# executed nothing fails the run.
GROUPS = ("slo", "load", "chaos", "fuzz", "security", "platform", "disruptive", "throttle",
          "timing", "capacity")
# Groups that run only when -m names them: minutes of load a plain `pytest` must not pay.
OPT_IN = ("capacity",)

MARKERS = (
    "needs(*capabilities): the spec needs these target capabilities (e.g. 'auth', "
    "'tenants:2'); not declared -> skip NOT_DECLARED, declared but probe fails -> fail",
    "contract(*sections): deprecated; the sections derive from clause(...) (e.g. '§2.2')",
    "clause(*ids): the contract clauses this spec asserts (pytest_sidecar.vocabulary.clauses, "
    "e.g. '§2.5/ids'); the report's coverage counts them",
    "profile(name): the conformance profile the spec counts towards (core, openai, explain, "
    "security, observability, performance, platform, resilience)",
    "slo: SLO verdicts under load (run with -m slo)",
    "capacity: a rate sweep for the target's peak rate (minutes of load; runs only when -m "
    "names it, pytest -m capacity, or the command line names its file)",
    "load: generates load; runs serially, never beside other xdist workers",
    "chaos: injects faults into the target and checks recovery",
    "fuzz: contract fuzzing (needs the schemathesis extra)",
    "security: access control, isolation, audit and hostile-input specs",
    "platform: Helm/ArgoCD/KEDA/Karpenter manifest specs",
    "throttle: empties a tenant's rate-limit buckets; runs with no other spec beside it, so "
    "its counts stay exact and no one else waits on the buckets",
    "timing: measures the target's own pacing (quiet stretches of a stream); runs with no "
    "other spec beside it, whose load would change what it measures",
    "disruptive: takes part of the target down for a while; on a shared target, other specs "
    "running at the same time may fail (deselect with -m 'not disruptive')",
    "own_stack: on the embedded stack, the spec disrupts, fuzzes or loads only a reference "
    "stack of its own, so it runs beside other specs there; against any other target it "
    "still runs alone",
)


# Load must not share cores with other xdist workers; disruption (a dependency switched
# off) and fuzzing (bursts of odd requests) must not make specs running beside them fail
# on a shared target.
SERIAL_MARKERS = ("load", "slo", "disruptive", "fuzz", "throttle", "timing", "capacity")
# ...unless the spec works on a stack of its own (embedded mode only).
OWN_STACK_MARKER = "own_stack"
