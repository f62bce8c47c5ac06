"""The Kubernetes Job launcher, without a cluster: the Job it renders is valid for
Kubernetes' schema, and a run launched through it goes from queued to its ending with
its events read back from the run's event log. A stand-in `kubectl` on PATH plays the
cluster: `apply` starts the Job's container command as a local process, `get` reports
the process as the Job's status, `delete` stops it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from pytest_sidecar.controlplane.kubernetes import JobSettings, render_job

from .conftest import events, kill_runs, launch, start, wait_state, write_suite

FAKE_KUBECTL = '''#!{python}
import json, os, signal, subprocess, sys
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jobs")
os.makedirs(state, exist_ok=True)
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] != ["--namespace"]:  # not the launcher (a tool probe): no cluster here
    sys.exit(1)
verb, args = sys.argv[3], sys.argv[4:]
if verb == "apply":
    job = json.load(sys.stdin)
    name = job["metadata"]["name"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = [sys.executable, *container["command"][1:]]
    # The "pod": runs the container command, then records its exit status.
    pod = ("import subprocess, sys; code = subprocess.call(sys.argv[2:]); "
           "open(sys.argv[1], 'w').write(str(code))")
    process = subprocess.Popen([sys.executable, "-c", pod, os.path.join(state, name + ".exit"),
                                *command], cwd=container["workingDir"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open(os.path.join(state, name + ".pid"), "w").write(str(process.pid))
    print("job.batch/" + name + " created")
elif verb == "get" and not os.path.exists(os.path.join(state, args[1] + ".pid")):
    sys.exit(print('Error from server (NotFound): jobs.batch "' + args[1] + '" not found',
                   file=sys.stderr) or 1)
elif verb == "get":
    exit_file = os.path.join(state, args[1] + ".exit")
    code = open(exit_file).read() if os.path.exists(exit_file) else None
    status = {{}} if code is None else {{"succeeded": 1}} if code == "0" else {{"failed": 1}}
    print(json.dumps({{"status": status}}))
elif verb == "delete":
    pid_file = os.path.join(state, args[1] + ".pid")
    os.killpg(int(open(pid_file).read()), signal.SIGTERM)
    os.unlink(pid_file)  # the Job is gone
    print("job.batch/" + args[1] + " deleted")
'''


def test_the_rendered_job_is_valid_kubernetes() -> None:
    pytest.importorskip("kubernetes_validate", reason="TOOL_MISSING: pip install -e '.[helm]'")
    from pytest_sidecar.manifests import validation_errors

    job = render_job("0123456789ab", [sys.executable, "-m", "pytest", "tests/e2e"], "/srv/suite",
                     JobSettings("ghcr.io/example/pytest-sidecar:1", "qa", "sidecar-runs",
                                 "/data", 1800))
    assert validation_errors(job) == []
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 1800
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "pytest", "tests/e2e"]
    assert container["volumeMounts"] == [{"name": "runs", "mountPath": "/data"}]
    assert "env" not in container, "no secret rides in the Job"
    job["spec"]["template"]["spec"]["restartPolicy"] = 7
    assert validation_errors(job), "the validator does catch a broken Job"


def test_a_run_launched_as_a_job_streams_and_ends_like_a_local_one(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(0o755)
    plane = start(tmp_path / "data", write_suite(tmp_path / "suite"),
                  CP_LAUNCHER="kubernetes", CP_K8S_IMAGE="ghcr.io/example/pytest-sidecar:1",
                  CP_K8S_CLAIM="sidecar-runs", CP_K8S_NAMESPACE="qa",
                  PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    try:
        with plane.client() as client:
            run_id = launch(client)
            seen = events(client, run_id)
            assert [e["outcome"] for _, e in seen if e["type"] == "test"] == [
                "passed", "failed", "failed"]
            assert seen[-1][1]["state"] == "failed", "the Job failed: pytest exited 1"
            slow = launch(client, suite="slow")
            wait_state(client, slow, ("running",))
            client.post(f"/api/testruns/{slow}/cancel")
            assert wait_state(client, slow, ("canceled",))["state"] == "canceled"
        calls = [json.loads(line) for line in
                 (bin_dir / "jobs" / "calls.jsonl").read_text().splitlines()]
        # The launcher's calls (the runs' own tool probes may ask `kubectl version`).
        calls = [c for c in calls if c[:1] == ["--namespace"]]
        verbs = [c[2] for c in calls]
        assert verbs.count("apply") == 2 and "delete" in verbs and "get" in verbs
        assert all(c[1] == "qa" for c in calls)
        assert f"sidecar-run-{slow}" in [c[4] for c in calls if c[2] == "delete"]
    finally:
        plane.stop()
        kill_runs(tmp_path)
