"""The chaos library: faults with leases, Chaos Toolkit-shaped experiments and journals.

No pytest here: `sidecar-chaos` and the `chaos` fixture both drive it.

- `backends.py`: the one protocol every fault backend speaks (inject with a lease,
  renew, roll back, list leftovers), and the control-file backend of CONTRACT §7;
- `leases.py`: renews the leases of a runner's faults while it lives, so the faults of a
  killed runner lapse by themselves;
- `experiment.py`, `activities.py`, `runner.py`, `journal.py`: experiments in Chaos
  Toolkit's shape (steady-state hypothesis, method, rollbacks), run with rollbacks that
  always run, and a journal with Chaos Toolkit's `journal.json` fields;
- `actions.py`: the functions an experiment's python provider calls.
"""
