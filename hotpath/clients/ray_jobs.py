"""Ray Job Submission against the project's cluster (the dashboard's job API at settings.ray).

The runtime environment ships the code with the job (``working_dir``: this checkout, without the
runtime dir, virtual environment, tests and data), so a job runs the submitter's code on any
cluster whose nodes have the dependencies installed (``scripts/bootstrap.sh``), never a path that
only exists on the submitting machine. Settings travel as JSON in ``HOTPATH_JOB_SETTINGS``.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from hotpath.config import Settings, repo_root
from hotpath.errors import BadInput, NotFound, ServiceUnavailable

__all__ = ["RayJobs", "JobInfo", "runtime_env", "parse_duration", "TERMINAL"]

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
EXCLUDES = [".hotpath", ".venv", ".git", "tests", "data", "models", "services", ".pytest_cache",
            "**/__pycache__", "*.egg-info", "build", "dist"]  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str, *, what: str = "duration") -> float:
    """``90s``, ``45m``, ``24h``, ``2d`` or plain seconds -> seconds."""
    m = _DURATION.match(text or "")
    if not m:
        raise BadInput(f"invalid {what} {text!r}: use a number with s, m, h or d (e.g. 24h)", field=what)
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if value <= 0:
        raise BadInput(f"{what} must be positive, got {text!r}", field=what)
    return value


def runtime_env(settings: Settings) -> dict:
    return {
        "working_dir": str(repo_root()),
        "excludes": list(EXCLUDES),
        "env_vars": {
            "HOTPATH_JOB_SETTINGS": settings.model_dump_json(),
            "RAY_USAGE_STATS_ENABLED": "0",
        },
    }


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    status: str
    message: str
    entrypoint: str
    start_time: float | None
    end_time: float | None


class RayJobs:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.address = f"http://{settings.ray.host}:{settings.ray.dashboard_port}"
        self._client = None

    def _c(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as exc:  # ConnectionError, RuntimeError: the dashboard is not there
                raise ServiceUnavailable(
                    f"no Ray job API at {self.address}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                    hint="start the cluster with `hotpath services up`",
                ) from exc
        return self._client

    def _call(self, what: str, fn, job_id: str | None = None):
        try:
            return fn(self._c())
        except ServiceUnavailable:
            raise
        except Exception as exc:  # the client raises RuntimeError for HTTP errors
            text = str(exc)
            if job_id is not None and ("does not exist" in text or "404" in text or "not found" in text.lower()):
                raise NotFound(f"no Ray job {job_id!r} at {self.address}") from exc
            raise ServiceUnavailable(f"Ray job API {what} at {self.address} failed: {text.splitlines()[0] if text else exc!r}") from exc

    def submit_semantic_refresh(self, *, hot_since_s: float | None = None, micro_batch: bool = False,
                                submission_id: str | None = None) -> str:  # fmt: skip
        args = [self.settings.refresh.job_python or sys.executable, "-m", "hotpath.jobs.semantic_refresh"]
        if hot_since_s is not None:
            args += ["--hot-since-s", repr(float(hot_since_s))]
        if micro_batch:
            args.append("--micro-batch")
        entrypoint = shlex.join(args)
        kind = "micro" if micro_batch else "daily"
        return self._call("submit", lambda c: c.submit_job(
            entrypoint=entrypoint,
            runtime_env=runtime_env(self.settings),
            submission_id=submission_id,
            metadata={"hotpath_job": "semantic-refresh", "kind": kind},
            entrypoint_num_cpus=0,
        ))  # fmt: skip

    def info(self, job_id: str) -> JobInfo:
        d = self._call("status", lambda c: c.get_job_info(job_id), job_id)
        return JobInfo(job_id, str(getattr(d.status, "value", d.status)), d.message or "", d.entrypoint,
                       (d.start_time or 0) / 1000 or None, (d.end_time or 0) / 1000 or None)  # fmt: skip

    def logs(self, job_id: str) -> str:
        return self._call("logs", lambda c: c.get_job_logs(job_id), job_id)

    def stop(self, job_id: str) -> bool:
        return bool(self._call("stop", lambda c: c.stop_job(job_id), job_id))

    def list(self) -> list[JobInfo]:
        jobs = self._call("list", lambda c: c.list_jobs())
        return [JobInfo(j.submission_id or j.job_id or "?", str(getattr(j.status, "value", j.status)), j.message or "",
                        j.entrypoint, (j.start_time or 0) / 1000 or None, (j.end_time or 0) / 1000 or None)
                for j in jobs]  # fmt: skip

    def wait(self, job_id: str, *, timeout_s: float, poll_s: float = 1.0,
             on_log: Callable[[str], None] | None = None) -> JobInfo:  # fmt: skip
        """Poll until the job ends (or ``timeout_s``), passing new log lines to ``on_log``."""
        deadline = time.monotonic() + timeout_s
        shown = 0
        while True:
            info = self.info(job_id)
            if on_log is not None:
                text = self.logs(job_id)
                lines = text.splitlines()
                for line in lines[shown:]:
                    on_log(line)
                shown = len(lines)
            if info.status in TERMINAL:
                return info
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"Ray job {job_id} still {info.status} after {timeout_s:.0f}s",
                                         hint=f"`hotpath jobs status {job_id}`; `hotpath jobs stop {job_id}`")  # fmt: skip
            time.sleep(poll_s)

    def tail(self, job_id: str) -> Iterator[str]:
        for line in self.logs(job_id).splitlines():
            yield line
