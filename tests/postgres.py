"""A real PostgreSQL server for the tests: a temporary cluster (initdb), started on a unix socket
in a temporary folder and stopped at the end.

Debian's `postgresql` package provides the binaries (.ci/run installs it). PostgreSQL refuses to
run as root, so as root it runs as the `postgres` system user. Skipped when the binaries are
missing, except under CI=true, where that is a failure.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import free_port, stop_server


def _postgres_bin() -> Path:
    """Debian's newest installed PostgreSQL (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


POSTGRES_BIN = _postgres_bin()
START_SECONDS = 60


def _as_postgres(folder: Path) -> dict:
    """subprocess's arguments that run a program as the server's user, who owns `folder`. The
    process itself switches user (no runuser in between), so that signals reach postgres."""
    if os.geteuid() != 0:
        return {"cwd": folder}
    shutil.chown(folder, "postgres", "postgres")
    return {"cwd": folder, "user": "postgres", "group": "postgres", "extra_groups": []}


@contextmanager
def postgres_server(user: str = "postgres", password: str | None = None) -> Iterator[str]:
    """Yields the SQLAlchemy URL of the `postgres` database of a fresh server. With a password,
    as the official postgres image sets one up for other pods: `user` is the superuser, and
    clients connect over TCP (127.0.0.1) with that password (scram-sha-256); else a unix socket
    without one."""
    if not (POSTGRES_BIN / "postgres").exists():
        message = f"no PostgreSQL server in {POSTGRES_BIN} (Debian: apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}: the PostgreSQL tests must run in CI")
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="feedback-postgres-"))
    as_postgres = _as_postgres(folder)
    data = folder / "data"
    auth = ["-A", "trust"]
    if password is not None:
        (folder / "password").write_text(password + "\n")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=password"]
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", user, *auth]
    subprocess.run(
        [*initdb, "-E", "UTF8", "--no-sync"], check=True, capture_output=True, **as_postgres
    )
    (folder / "password").unlink(missing_ok=True)
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    # A unix socket in the temporary folder (and 127.0.0.1 with a password); no fsync: throwaway.
    listen = "127.0.0.1" if password is not None else ""
    postgres = [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-k", str(folder), "-p", str(port)]
    postgres += ["-c", f"listen_addresses={listen}", "-c", "fsync=off"]
    server = subprocess.Popen(postgres, stdout=log, stderr=subprocess.STDOUT, **as_postgres)
    if password is None:
        url = f"postgresql://{user}@/postgres?host={folder}&port={port}"
    else:
        url = f"postgresql://{user}:{password}@127.0.0.1:{port}/postgres"
    try:
        _wait_until_ready(url, server, folder)
        yield url
    finally:
        stop_server(server, signal.SIGINT, 20)  # "fast" shutdown: ends the open sessions too
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(url: str, server: subprocess.Popen, folder: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited: {(folder / 'server.log').read_text()}")
        try:
            psycopg.connect(url).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError(f"postgres was not ready within {START_SECONDS} s")


def new_database(server_url: str) -> str:
    """A new, empty database on the server; returns its URL."""
    import psycopg

    name = f"feedback_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?", 1)
