"""Event latency of the control plane (issue 15): from a test finishing in pytest to its
`test` event reaching each of 20 live viewers.

    python benchmarks/controlplane_events.py [--viewers 20] [--tests 40]

A demo suite's tests each note the wall-clock time as they return; 20 SSE viewers (HTTP
clients reading /api/testruns/{id}/events, as the web UI's fetch reader does) note when
each `test` event arrives. Prints p50/p99/max over every (test, viewer) pair. The path
measured: pytest's report -> the plugin's event log line -> the control plane's tail
(polled every 0.1 s) -> the store -> every viewer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

TEST = '''
import json, time, pathlib, pytest

@pytest.mark.parametrize("n", range({tests}))
def test_step(n, request):
    time.sleep(0.15)
    with open(pathlib.Path(__file__).with_name("finished.jsonl"), "a") as out:
        out.write(json.dumps([request.node.nodeid, time.time()]) + "\\n")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--tests", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "suite").mkdir()
        (root / "suite" / "test_steps.py").write_text(TEST.format(tests=args.tests))
        env = {**os.environ, "AUTH_MODE": "none", "CP_SUITES_JSON": '{"steps": ["."]}',
               "PYTEST_ADDOPTS": "-p no:schemathesis -p no:hypothesispytest"}
        plane = subprocess.Popen(
            [sys.executable, "-m", "pytest_sidecar.cli.controlplane", "serve", "--port", "0",
             "--data-dir", str(root / "data"), "--suite-root", str(root / "suite")],
            stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert plane.stdout is not None
            url = re.search(r"http://\S+", plane.stdout.readline()).group(0)  # type: ignore
            run_id = httpx.post(url + "/api/testruns", json={"suite": "steps"}).json()["id"]
            seen: list[dict[str, float]] = [{} for _ in range(args.viewers)]

            def view(index: int) -> None:
                with httpx.stream("GET", f"{url}/api/testruns/{run_id}/events",
                                  timeout=120) as response:
                    for line in response.iter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            if event["type"] == "test":
                                seen[index][event["nodeid"]] = time.time()
                            elif event["type"] == "end":
                                return

            threads = [threading.Thread(target=view, args=(i,)) for i in range(args.viewers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(300)
            finished = dict(json.loads(line) for line in
                            (root / "suite" / "finished.jsonl").read_text().splitlines())
        finally:
            plane.terminate()
            plane.wait(30)
    delays = sorted((at - finished[nodeid]) * 1000 for viewer in seen
                    for nodeid, at in viewer.items() if nodeid in finished)
    expected = args.tests * args.viewers
    print(f"{len(delays)} of {expected} (test, viewer) events seen by {args.viewers} viewers")
    if delays:
        pick = lambda q: delays[min(len(delays) - 1, round(q * (len(delays) - 1)))]  # noqa: E731
        print(f"test finished -> viewer: p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, "
              f"max {delays[-1]:.0f} ms")


if __name__ == "__main__":
    main()
