"""A PostgreSQL primary and a streaming standby of it, for tests that read from a replica.

The standby is made as an operator makes one: ``pg_basebackup -R -X stream`` of the primary's whole
cluster (as the ``postgres`` OS user), a small configuration of its own (port, socket directory,
the primary's hot-standby limits), started with ``pg_ctl`` and waited for until it answers and is
in recovery; stopped and removed afterwards. The primary must accept a replication connection
from 127.0.0.1: :func:`allow_replication` adds the pg_hba line when it is missing (as root, as CI
runs) and says what it did.

The tests' primary is a small cluster of their own (:class:`ScratchPrimary`: ``initdb`` on a free
port), not the machine's: a base backup copies every database of a cluster, and the machine's
holds whatever else is there (a benchmark database of 5-8 GB took 44 s to copy, and while the
benchmark wrote, replay lagged more than 30 s behind), where a fresh cluster copies in about a
second and replays at once.

By hand, against any primary (the machine's, say): ``python -m tests.standby
postgresql://postgres@127.0.0.1:5432/postgres`` starts a standby of it, prints the timings and
removes it on Enter.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psycopg
from sqlalchemy.engine import URL, make_url

#: What :func:`allow_replication` appends to the primary's pg_hba.conf (trust, as the file's other
#: lines on a CI machine; loopback only).
HBA_LINE = "host replication all 127.0.0.1/32 trust"
HBA_COMMENT = "# added by the Shouwang tests (tests/standby.py): a streaming standby on this machine"
#: Settings a hot standby needs at least as large as its primary's, or it refuses to start.
HOT_STANDBY_MINIMUMS = (
    "max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
    "max_locks_per_transaction",
)  # fmt: skip
START_TIMEOUT_SECONDS = 60
REPLAY_TIMEOUT_SECONDS = 30


def _conninfo(url: URL, **override: object) -> str:
    parts = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "dbname": url.database or "postgres",
        **override,
    }
    if url.password:
        parts["password"] = url.password
    return " ".join(f"{key}={value}" for key, value in parts.items())


def _query(conninfo: str, sql: str) -> tuple[object, ...]:
    """The first row of ``sql`` (empty for a statement that returns none)."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        cursor = connection.execute(sql)
        row = cursor.fetchone() if cursor.description else ()
    assert row is not None
    return row


def _as_postgres(*command: str) -> list[str]:
    """``command`` run as the ``postgres`` OS user (the cluster's files are its own)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)  # already the postgres user, or failing with the tool's own message


def _own(path: Path) -> None:
    """Give ``path`` to the postgres user when we are root (the servers then run as postgres)."""
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _replication_accepted(primary: URL, psql: Path) -> bool:
    """Whether the primary takes a physical replication connection from 127.0.0.1 (as pg_basebackup
    makes one), tried for real: the pg_hba file may say one thing and the loaded rules another."""
    conninfo = _conninfo(primary, dbname="replication", replication="true")
    probe = subprocess.run(
        _as_postgres(str(psql), conninfo, "-Atc", "IDENTIFY_SYSTEM"), capture_output=True, text=True, timeout=30
    )
    return probe.returncode == 0


def allow_replication(primary: URL, bin_dir: Path) -> str:
    """Make the primary accept replication connections from 127.0.0.1; returns what was done.

    Idempotent: nothing is written when a replication connection already succeeds, and the line is
    appended only when the file lacks it (then the configuration is reloaded). Editing pg_hba.conf
    needs root or the postgres user, as on CI."""
    psql = bin_dir / "psql"
    if _replication_accepted(primary, psql):
        return "the primary already accepts replication connections from 127.0.0.1"
    conninfo = _conninfo(primary)
    (hba_file,) = _query(conninfo, "SHOW hba_file")
    hba = Path(str(hba_file))
    done = []
    if HBA_LINE not in hba.read_text().splitlines():
        with hba.open("a") as handle:
            handle.write(f"\n{HBA_COMMENT}\n{HBA_LINE}\n")
        done.append(f"appended '{HBA_LINE}' to {hba}")
    _query(conninfo, "SELECT pg_reload_conf()")
    done.append("reloaded the primary's configuration")
    deadline = time.monotonic() + 10  # the postmaster rereads pg_hba.conf on SIGHUP, asynchronously
    while not _replication_accepted(primary, psql):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the primary still refuses replication connections after: {'; '.join(done)}")
        time.sleep(0.1)
    return "; ".join(done)


def free_port(first: int = 5433) -> int:
    """The first port from ``first`` on which nothing listens on 127.0.0.1."""
    for port in range(first, first + 100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}..{first + 99}")


def installed_bin_dir() -> Path:
    """The newest PostgreSQL's programs installed here (Debian: /usr/lib/postgresql/<major>/bin)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    if not versions:
        raise RuntimeError("no PostgreSQL server programs under /usr/lib/postgresql (package postgresql)")
    return versions[-1].parent


@dataclass
class _Cluster:
    """A throwaway cluster in a temporary directory owned by ``postgres``, run with ``pg_ctl``."""

    bin_dir: Path = Path()
    port: int = 0
    directory: Path = Path()
    #: What was measured and done, for the test's output and README's figures.
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _make_directory(self, prefix: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        _own(self.directory)

    def _configure(self, settings: dict[str, object], hba: str) -> None:
        self.port = free_port()
        base: dict[str, object] = {
            "port": self.port, "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.directory}'",
            "shared_buffers": "'16MB'", "fsync": "off",  # throwaway: nothing to keep after a crash
        }  # fmt: skip
        lines = "".join(f"{key} = {value}\n" for key, value in {**base, **settings}.items())
        for name, content in (("postgresql.conf", lines), ("pg_hba.conf", hba), ("pg_ident.conf", "")):
            (self.data / name).write_text(content)
            _own(self.data / name)

    def _start(self) -> None:
        self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.directory / "server.log",
                  "-w", "-t", START_TIMEOUT_SECONDS, "start")  # fmt: skip

    def _run(self, *command: object) -> None:
        result = subprocess.run(_as_postgres(*map(str, command)), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}{tail}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        if self.directory != Path() and self.directory.exists():
            shutil.rmtree(self.directory)


@dataclass
class ScratchPrimary(_Cluster):
    """A new, empty primary cluster on a free port with one database, ``database`` (a context
    manager: made and started on entry, removed on exit)."""

    database: str = "shouwang"

    @property
    def url(self) -> URL:
        return make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}")

    def __enter__(self) -> ScratchPrimary:
        self.bin_dir = installed_bin_dir()
        self._make_directory("sw-primary-")
        try:
            started = time.monotonic()
            self._run(self.bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")  # fmt: skip
            # initdb's pg_hba.conf already trusts replication from 127.0.0.1; written out anyway.
            self._configure({"wal_level": "replica", "max_wal_senders": 4},
                            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
                            "host replication all 127.0.0.1/32 trust\n")  # fmt: skip
            self._start()
            _query(_conninfo(self.url, dbname="postgres"), f'CREATE DATABASE "{self.database}"')
            self.notes["primary_seconds"] = f"{time.monotonic() - started:.1f}"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self


@dataclass
class Standby(_Cluster):
    """A running standby of ``primary`` (a context manager: made and started on entry, removed on exit)."""

    primary: URL = field(default_factory=lambda: make_url("postgresql://postgres@127.0.0.1:5432/postgres"))

    @property
    def url(self) -> URL:
        """The primary's URL with the standby's port: the same database, read from the standby."""
        return self.primary.set(host="127.0.0.1", port=self.port)

    def conninfo(self) -> str:
        return _conninfo(self.url)

    def __enter__(self) -> Standby:
        primary = _conninfo(self.primary)
        (version,) = _query(primary, "SHOW server_version_num")
        self.bin_dir = Path(f"/usr/lib/postgresql/{int(str(version)) // 10000}/bin")
        self.notes["pg_hba"] = allow_replication(self.primary, self.bin_dir)
        self._make_directory("sw-standby-")
        try:
            self._copy_and_start(primary)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _copy_and_start(self, primary: str) -> None:
        (size,) = _query(primary, "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
        started = time.monotonic()
        # -c fast: the backup's checkpoint at once (a spread one takes minutes on an idle primary);
        # --no-sync: a throwaway copy, and syncing it took 4 of 5 s on a busy disk.
        self._run(self.bin_dir / "pg_basebackup", "-h", self.primary.host or "127.0.0.1",
                  "-p", self.primary.port or 5432, "-U", self.primary.username or "postgres",
                  "-D", self.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        copied = time.monotonic()
        limits = {name: _query(primary, f"SHOW {name}")[0] for name in HOT_STANDBY_MINIMUMS}
        # The copy has the primary's postgresql.auto.conf (with -R's primary_conninfo) and
        # standby.signal; a Debian cluster keeps the rest in /etc, so it is written here.
        self._configure({"hot_standby": "on", **limits}, "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        self._start()
        (in_recovery,) = _query(self.conninfo(), "SELECT pg_is_in_recovery()")
        if in_recovery is not True:
            raise RuntimeError("the standby answers but is not in recovery")
        self.notes.update(
            cluster_size=str(size), basebackup_seconds=f"{copied - started:.1f}",
            start_seconds=f"{time.monotonic() - copied:.1f}", port=str(self.port),
        )  # fmt: skip

    # --- replay -------------------------------------------------------------------------------

    def wait_for_replay(self) -> float:
        """Wait until the standby has replayed everything the primary has written so far; returns
        the seconds it took (the replication lag seen)."""
        (target,) = _query(_conninfo(self.primary), "SELECT pg_current_wal_lsn()")
        started = time.monotonic()
        with psycopg.connect(self.conninfo(), autocommit=True) as standby:
            while True:
                row = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (str(target),)).fetchone()
                if row is not None and row[0]:
                    return time.monotonic() - started
                if time.monotonic() - started > REPLAY_TIMEOUT_SECONDS:
                    raise TimeoutError(f"the standby has not replayed up to {target} in {REPLAY_TIMEOUT_SECONDS} s")
                time.sleep(0.01)

    def pause_replay(self) -> None:
        """Stop applying WAL (it is still received) and wait until replay is paused for real."""
        with psycopg.connect(self.conninfo(), autocommit=True) as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
            deadline = time.monotonic() + REPLAY_TIMEOUT_SECONDS
            while standby.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() != ("paused",):
                if time.monotonic() > deadline:
                    raise TimeoutError("replay did not pause")
                time.sleep(0.01)

    def resume_replay(self) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as standby:
            standby.execute("SELECT pg_wal_replay_resume()")


def main(url: str) -> None:
    with Standby(primary=make_url(url)) as standby:
        print(standby.notes, flush=True)
        print(f"replay caught up in {standby.wait_for_replay():.3f} s; Enter stops and removes it", flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
