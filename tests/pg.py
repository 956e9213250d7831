"""A throwaway PostgreSQL cluster from the installed binaries (Debian's `postgresql`), no Docker.

`PgCluster().start()` runs initdb and pg_ctl in a fresh temporary folder, listens on a free
port of 127.0.0.1 (and a unix socket in that folder), trusts local connections, and
`stop()` removes it all. PostgreSQL refuses to run as root: as root the cluster runs as the
`postgres` user when there is one, else `nobody`, through Popen's user/group (no sudo).
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.helpers import free_port

SUPERUSER = "yingji"


def pg_bindir() -> Path | None:
    """The directory of initdb/pg_ctl: the newest /usr/lib/postgresql/<ver>/bin, else pg_config's, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[4])] or [0])
    if found:
        return Path(found[-1]).parent
    if (cfg := shutil.which("pg_config")):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run([cfg, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
            if (Path(out) / "initdb").exists():
                return Path(out)
    if (initdb := shutil.which("initdb")):
        return Path(initdb).parent
    return None


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


class PgCluster:
    def __init__(self, max_connections: int = 300) -> None:
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found; `make test` installs "
                                    "Debian's postgresql")
        self.max_connections = max_connections
        self.user = _run_as()
        self.root: Path | None = None
        self.port = 0

    # everything PostgreSQL runs with the cluster owner's ids
    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kw: dict = {}
        if self.user is not None:
            kw = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
               "HOME": str(self.root)}
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              env=env, cwd=str(self.root), check=check, timeout=120, **kw)

    def start(self) -> PgCluster:
        # not under pytest's tmp_path: /tmp/pytest-of-root is 0700, the postgres user could not enter it
        self.root = Path(tempfile.mkdtemp(prefix="yingji-pg-"))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.root, 0o755)  # the socket and the log are read by the test process
        data = self.root / "data"
        try:
            self._pg("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                     "--no-instructions", "--no-sync")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr or exc.stdout}") from exc
        for attempt in range(5):  # a free port may be taken between looking and binding
            self.port = free_port()
            opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                    f"-c max_connections={self.max_connections} -c fsync=off -c synchronous_commit=off "
                    f"-c full_page_writes=off -c shared_buffers=64MB")
            r = self._pg("pg_ctl", "-D", str(data), "-l", str(self.root / "server.log"), "-o", opts, "-w",
                         "-t", "120", "start", check=False)
            if r.returncode == 0:
                return self
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            if "already in use" not in log or attempt == 4:
                self.stop()
                raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{log[-2000:]}")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception), self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.root / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "60", "stop", check=False)
            deadline = time.monotonic() + 30
            while (self.root / "data" / "postmaster.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
