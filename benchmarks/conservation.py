"""Conservation across SIGKILLs at scale: explained chats under load against a reference
stack whose gateway, then explainer, is SIGKILLed and restarted alone, until at least N
traces were acknowledged; then every acknowledged trace is followed and judged
(chaos/conservation.py).

    python benchmarks/conservation.py [--traces 1000] [--senders 8]

It prints the counts of the restart spec: acknowledged, lost, failed, duplicated,
backwards, recovered, webhooks lost, and the time to visible per channel (status,
audit, webhook: each acknowledged trace gets a webhook to a receiver on 127.0.0.1); and
the acknowledgement rate over each tenth of the run, which stays flat when the store's
commit cost does not grow with its size.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from pytest_sidecar.chaos.conservation import (
    audit_channel,
    drive,
    follow_status,
    judge,
    wait_for_deliveries,
)
from pytest_sidecar.embedded import EmbeddedStack
from pytest_sidecar.receiver import Receiver
from pytest_sidecar.target import load_target_file

ROLES = ("gateway", "explainer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1000,
                        help="drive until this many were acknowledged (default 1000)")
    parser.add_argument("--senders", type=int, default=8,
                        help="client threads sending explained chats (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conservation-") as directory, \
            Receiver() as receiver:
        stack = EmbeddedStack(directory, os.getpid())
        target = load_target_file(stack.ensure_started())
        token = target.tenants["a"].tokens.write
        try:
            # Driven until N traces were acknowledged, one kill after each third of
            # them; 30-40 are acknowledged a second on 2 cores (backpressure refuses the
            # rest), so the time bound is ~3x what that needs.
            bound_s = max(60.0, args.traces / 10)
            started = time.monotonic()
            ledger, downtime = drive(target.url, token,
                                     lambda role: stack.restart(roles=(role,)),
                                     ROLES, bound_s, args.senders, hook_url=receiver.url,
                                     acknowledged=args.traces)
            load_s = round(time.monotonic() - started, 1)
            observed = follow_status(target.url, token, ledger, max(120.0, args.traces / 20))
            hooks = wait_for_deliveries(receiver.deliveries, ledger, observed,
                                        max(30.0, args.traces / 200))
            audit, delays = audit_channel(target.audit_log, ledger, observed)
            verdict = judge(ledger, observed, audit, delays, hooks)
        finally:
            stack.stop()
    print(json.dumps({**{k: (len(v) if isinstance(v, list) else v)
                         for k, v in verdict.items()}, "downtime_s": downtime,
                      "load_s": load_s,
                      "acknowledged_per_s_by_tenth": rate_by_tenth(ledger.acknowledged)},
                     indent=2))
    if verdict["acknowledged"] < args.traces:
        print(f"note: {verdict['acknowledged']} acknowledged, fewer than the {args.traces} "
              f"asked for, in the {bound_s:g} s bound")


def rate_by_tenth(acknowledged: dict[str, float]) -> list[float]:
    """Acknowledgements a second over each tenth of them, in order: flat when the cost of
    acknowledging does not grow with the store (the two tenths with a restart in them
    are slower by its downtime)."""
    times = sorted(acknowledged.values())
    size = len(times) // 10
    if size < 2:
        return []
    return [round((size - 1) / max(1e-9, times[i + size - 1] - times[i]), 1)
            for i in range(0, size * 10, size)]


if __name__ == "__main__":
    main()
