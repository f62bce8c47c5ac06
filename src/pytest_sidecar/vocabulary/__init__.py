"""The bottom floor: the contract's and the suite's words, as data.

Capability names, trace states, contract defaults and SLO thresholds, marker groups,
report keys, typed reason codes and the redactor. Every other module imports from here;
nothing here imports anything else of pytest_sidecar (scripts/check_layers.py checks it).
The reference stack keeps its own copies of what it implements, on purpose: an oracle
must not share constants with the code it checks (tests/unit/stack/test_vocabulary.py
compares them).
"""
