"""The Kubernetes Job launcher: for teams that run the suite inside their cluster.

A run becomes one `batch/v1` Job (rendered here, schema-validated like the project's
other manifests) whose pod runs the same pytest command. The run's directory lives on a
volume the control plane also mounts, at the same path, so progress is read back from
the run's event log exactly as for a local run: no scheduler of our own, only
`kubectl` (apply, get, delete) as an argument list.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import ControlPlaneError

LABEL = "pytest-sidecar.dev/run"
KUBECTL_TIMEOUT_S = 60
GONE = 143  # the exit status of a run whose Job was deleted (as by SIGTERM)
POLL_EVERY_S = 2.0  # the event log shows progress; the Job's status only its end


class LaunchError(ControlPlaneError, RuntimeError):
    pass


@dataclass(frozen=True)
class JobSettings:
    image: str
    namespace: str
    claim: str  # a PersistentVolumeClaim holding the data directory
    data_dir: str  # where it is mounted, in the pod and in the control plane
    timeout_s: float
    kubectl: str = "kubectl"


def render_job(run_id: str, argv: Sequence[str], cwd: str, settings: JobSettings
               ) -> dict[str, Any]:
    """The Job that runs `argv` in `cwd` for run `run_id`: no retries (a rerun is a new
    run), bounded by the run timeout, cleaned up a day after it ends, non-root."""
    name = f"sidecar-run-{run_id}"
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": settings.namespace,
                     "labels": {LABEL: run_id, "app.kubernetes.io/name": "pytest-sidecar"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(settings.timeout_s),
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": {LABEL: run_id}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                        "fsGroup": 1000},
                    "containers": [{
                        "name": "pytest", "image": settings.image,
                        "command": ["python", *argv[1:]], "workingDir": cwd,
                        "resources": {"requests": {"cpu": "2", "memory": "1Gi"},
                                      "limits": {"memory": "2Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "runs", "mountPath": settings.data_dir}],
                    }],
                    "volumes": [{"name": "runs", "persistentVolumeClaim": {
                        "claimName": settings.claim}}],
                },
            },
        },
    }


class KubernetesJob:
    """A run as a Job; poll() reads its status, cancel() deletes it."""

    def __init__(self, name: str, settings: JobSettings) -> None:
        self.name, self.settings = name, settings
        self._asked = 0.0

    def _kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([self.settings.kubectl, "--namespace", self.settings.namespace,
                               *args], input=stdin, capture_output=True, text=True,
                              timeout=KUBECTL_TIMEOUT_S, check=False)
        if done.returncode:
            raise LaunchError(f"kubectl {args[0]} failed: {done.stderr.strip()[:300]}")
        return done.stdout

    def poll(self) -> int | None:
        """0 when the Job succeeded, 1 when it failed (the run's report tells why),
        None while it runs (asked of the cluster every POLL_EVERY_S at most)."""
        if time.monotonic() - self._asked < POLL_EVERY_S:
            return None
        self._asked = time.monotonic()
        try:
            answer = self._kubectl("get", "job", self.name, "-o", "json")
        except LaunchError as exc:
            if "NotFound" in str(exc):
                return GONE  # deleted (canceled, or cleaned up by its TTL)
            raise
        status = json.loads(answer).get("status") or {}
        if status.get("succeeded"):
            return 0
        if status.get("failed"):
            return 1
        return None

    def cancel(self) -> None:
        self._kubectl("delete", "job", self.name, "--wait=false",
                      "--cascade=foreground")


class KubernetesLauncher:
    """Launches each run as a Job (see the module's docstring)."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings

    def start(self, argv: Sequence[str], cwd: str, log_path: str) -> KubernetesJob:
        from ..manifests import validation_errors

        run_id = os.path.basename(os.path.dirname(log_path))
        job = render_job(run_id, argv, cwd, self.settings)
        problems = validation_errors(job)
        if problems:
            raise LaunchError("the rendered Job is not valid: " + "; ".join(problems))
        launched = KubernetesJob(job["metadata"]["name"], self.settings)
        launched._kubectl("apply", "-f", "-", stdin=json.dumps(job))
        return launched
