"""PostgreSQL 16 + pgvector 0.6 from the PyPI ``pgserver`` wheel, on ``settings.cloud.postgres.port``.

The wheel's binaries (``pgserver/pginstall/bin``) are used directly, located through the package
files (``importlib.util.find_spec``; importing ``pgserver`` would start its own server): ``initdb``
once into ``<runtime>/services/postgres/data``, then ``postgres`` in the foreground, TCP on
127.0.0.1 only, no Unix socket, trust authentication for loopback connections. Run as root (CI, this
machine), PostgreSQL refuses to start, so the data folder belongs to a system user ``hotpath-pg``
(created with ``useradd`` when missing) and the server is exec'd as that user through ``setpriv``
(the PID stays the postmaster's). Stop is a *fast* shutdown (SIGINT: open sessions are closed), then
the base class' by-PID sweep.

``after_ready`` creates the database, the ``vector`` extension and the application role (a
non-superuser, so row-level security applies to it).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from hotpath.cluster import process
from hotpath.cluster.base import NotReady, Service
from hotpath.errors import ServiceError

__all__ = ["PostgresService", "pg_bin_dir"]

PG_USER = "hotpath-pg"


def pg_bin_dir() -> Path | None:
    """``pgserver``'s bundled ``bin`` folder, or None when the package is not installed."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return d if (d / "postgres").is_file() else None


def _as_root() -> bool:
    return os.geteuid() == 0


class PostgresService(Service):
    name = "postgres"
    env_key = "CLOUD__POSTGRES"
    start_timeout_s = 60.0
    stop_grace_s = 15.0

    @property
    def pg(self):  # noqa: ANN201
        return self.settings.cloud.postgres

    @property
    def host(self) -> str:
        return self.pg.host

    def ports(self) -> dict[str, int]:
        return {"port": self.pg.port}

    def preflight(self) -> None:
        if pg_bin_dir() is None:
            raise ServiceError("postgres: the pgserver package (PostgreSQL + pgvector binaries) is not installed",
                               hint="pip install pgserver==0.1.4 (scripts/bootstrap.sh does it)")
        if _as_root() and shutil.which("setpriv") is None:
            raise ServiceError("postgres: running as root needs setpriv (util-linux) to drop privileges")

    # ------------------------------------------------------------------ running as another user
    def _user_prefix(self) -> list[str]:
        if not _as_root():
            return []
        return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--clear-groups"]

    def _ensure_user(self) -> None:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            try:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                               check=True, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                raise ServiceError(f"postgres: cannot create the system user {PG_USER}: {exc}") from exc
        ent = pwd.getpwnam(PG_USER)
        # the server must traverse to its data folder and read the binaries
        p = self.data_dir.parent
        while True:
            mode = p.stat().st_mode
            if not mode & 0o001:
                p.chmod(mode | 0o001)
            if p == p.parent:
                break
            p = p.parent
        for root, dirs, files in os.walk(self.data_dir):
            os.chown(root, ent.pw_uid, ent.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), ent.pw_uid, ent.pw_gid)
        os.chown(self.data_dir, ent.pw_uid, ent.pw_gid)
        os.chown(self.log_path.parent, ent.pw_uid, ent.pw_gid)

    # ------------------------------------------------------------------ life cycle
    def prepare(self, say=lambda msg: None) -> None:  # noqa: ANN001
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if _as_root():
            self._ensure_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        say("  postgres   initdb (first start) ...")
        initdb = str(pg_bin_dir() / "initdb")
        cmd = [*self._user_prefix(), initdb, "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
               "--locale=C", "-U", self.pg.admin_user]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise self.fail(f"initdb could not run: {exc}", show_log=False) from exc
        if out.returncode != 0:
            raise self.fail(f"initdb failed: {(out.stderr or out.stdout).strip()[-300:]}", show_log=False)

    def command(self) -> list[str]:
        postgres = str((pg_bin_dir() or Path("/nonexistent")) / "postgres")
        return [
            *self._user_prefix(), postgres, "-D", str(self.data_dir),
            "-c", f"listen_addresses={self.pg.host}",
            "-p", str(self.pg.port),
            "-c", "unix_socket_directories=",
            "-c", "max_connections=100",
            "-c", "shared_buffers=128MB",
            "-c", "maintenance_work_mem=256MB",  # HNSW builds in memory
            "-c", "synchronous_commit=off",
            "-c", "logging_collector=off",
            "-c", "log_min_messages=warning",
        ]

    def _connect(self, user: str | None = None, dbname: str = "postgres"):  # noqa: ANN202
        import psycopg

        return psycopg.connect(host=self.pg.host, port=self.pg.port, user=user or self.pg.admin_user,
                               dbname=dbname, connect_timeout=max(1, int(self.probe_timeout_s)), autocommit=True)

    def probe(self) -> None:
        import psycopg

        try:
            with self._connect() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise NotReady(f"postgres does not answer: {str(exc).strip()[:200]}") from exc

    def after_ready(self, say) -> None:  # noqa: ANN001
        import psycopg
        from psycopg import sql

        db, app = self.pg.database, self.pg.app_user
        try:
            with self._connect() as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(app)))
            with self._connect(dbname=db) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), sql.Identifier(app)))
        except psycopg.Error as exc:
            raise self.fail(f"setting up database {db!r} failed: {str(exc).strip()[:200]}") from exc

    def stop(self) -> bool:
        rec = self.record()
        if rec and rec.alive():
            try:
                os.kill(rec.pid, signal.SIGINT)  # fast shutdown: sessions are closed, not waited for
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + self.stop_grace_s
            while time.monotonic() < deadline and rec.alive():
                time.sleep(0.1)
        return super().stop() or bool(rec)
