"""``hotpath jobs submit semantic-refresh | status | logs | stop | list | schedule``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _settings(config: Optional[Path]):
    from hotpath.config import load_settings

    return load_settings(config)


def _last_progress(logs: str) -> str | None:
    from hotpath.refresh.progress import PROGRESS_TAG

    lines = [ln for ln in logs.splitlines() if PROGRESS_TAG in ln]
    return lines[-1][lines[-1].index(PROGRESS_TAG):] if lines else None


def _result(logs: str) -> dict | None:
    from hotpath.jobs.semantic_refresh import RESULT_TAG

    for ln in reversed(logs.splitlines()):
        if ln.startswith(RESULT_TAG):
            return json.loads(ln[len(RESULT_TAG):])
    return None


def register(root: typer.Typer, bench: typer.Typer) -> None:
    jobs = typer.Typer(no_args_is_help=True, help="Ray jobs on the project's cluster (Ray Job Submission).")
    root.add_typer(jobs, name="jobs")
    submit = typer.Typer(no_args_is_help=True, help="Submit a job.")
    jobs.add_typer(submit, name="submit")

    @submit.command("semantic-refresh")
    def submit_refresh(
        hot_since: str = typer.Option(None, "--hot-since", help="Hot window, e.g. 24h (default: refresh.hot_since_s)"),
        micro_batch: bool = typer.Option(False, "--micro-batch",
                                         help="New/changed products, the refresh queue and stale rows "
                                              "(recent activity too only with --hot-since)"),  # fmt: skip
        wait: bool = typer.Option(False, "--wait", help="Follow the logs until the job ends; exit 1 unless it succeeded"),
        timeout: str = typer.Option("6h", help="With --wait: give up waiting after this long"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Recompute related_masters of the hot masters (a Ray Data job)."""
        from hotpath.clients.ray_jobs import RayJobs, parse_duration

        s = _settings(config)
        since = parse_duration(hot_since, what="--hot-since") if hot_since else None
        limit = parse_duration(timeout, what="--timeout")
        client = RayJobs(s)
        job_id = client.submit_semantic_refresh(hot_since_s=since, micro_batch=micro_batch)
        typer.echo(json.dumps({"job_id": job_id, "address": client.address}))
        if wait:
            info = client.wait(job_id, timeout_s=limit, on_log=lambda ln: typer.echo(ln, err=True))
            typer.echo(json.dumps({"job_id": job_id, "status": info.status, "message": info.message,
                                   "result": _result(client.logs(job_id))}))  # fmt: skip
            if info.status != "SUCCEEDED":
                raise typer.Exit(1)

    @jobs.command("status")
    def status(job_id: str, config: Optional[Path] = typer.Option(None, "--config")) -> None:
        """A job's state, its latest progress line and (when done) its result."""
        from hotpath.clients.ray_jobs import RayJobs

        client = RayJobs(_settings(config))
        info = client.info(job_id)
        logs = client.logs(job_id)
        out = {"job_id": job_id, "status": info.status, "message": info.message,
               "progress": _last_progress(logs), "result": _result(logs)}  # fmt: skip
        if info.start_time:
            out["running_s"] = round((info.end_time or time.time()) - info.start_time, 1)
        typer.echo(json.dumps(out))

    @jobs.command("logs")
    def logs(job_id: str, config: Optional[Path] = typer.Option(None, "--config")) -> None:
        """The job's log so far."""
        from hotpath.clients.ray_jobs import RayJobs

        typer.echo(RayJobs(_settings(config)).logs(job_id), nl=False)

    @jobs.command("stop")
    def stop(job_id: str, config: Optional[Path] = typer.Option(None, "--config")) -> None:
        """Stop a running job (a stopped refresh leaves the old maps where it had not written yet)."""
        from hotpath.clients.ray_jobs import RayJobs

        stopped = RayJobs(_settings(config)).stop(job_id)
        typer.echo(json.dumps({"job_id": job_id, "stop_requested": stopped}))

    @jobs.command("list")
    def list_cmd(config: Optional[Path] = typer.Option(None, "--config")) -> None:
        """Jobs the cluster knows, one JSON object per line."""
        from hotpath.clients.ray_jobs import RayJobs

        for j in RayJobs(_settings(config)).list():
            typer.echo(json.dumps({"job_id": j.job_id, "status": j.status, "entrypoint": j.entrypoint}))

    @jobs.command("schedule")
    def schedule(
        daily_at: str = typer.Option(None, help="UTC time of the daily run, HH:MM (default: refresh.daily_at)"),
        every: str = typer.Option(None, help="Micro-batch interval, 1h-4h (default: refresh.micro_batch_every_s)"),
        cron: bool = typer.Option(False, "--cron", help="Print crontab lines instead of running the loop"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """The daily run and the micro-batches: crontab lines (--cron), or a small foreground loop."""
        from hotpath.clients.ray_jobs import RayJobs, parse_duration
        from hotpath.refresh.schedule import cron_lines, next_run

        s = _settings(config)
        at = daily_at or s.refresh.daily_at
        step = parse_duration(every, what="--every") if every else s.refresh.micro_batch_every_s
        if cron:
            for line in cron_lines(at, step, ["hotpath", "jobs", "submit", "semantic-refresh"]):
                typer.echo(line)
            return
        client = RayJobs(s)
        while True:
            when, kind = next_run(time.time(), at, step)
            typer.echo(f"next {kind} semantic refresh at {time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(when))}",
                       err=True)  # fmt: skip
            time.sleep(max(0.0, when - time.time()))
            job_id = client.submit_semantic_refresh(micro_batch=kind == "micro")
            info = client.wait(job_id, timeout_s=s.refresh.job_timeout_s)
            typer.echo(json.dumps({"job_id": job_id, "kind": kind, "status": info.status}))
