"""`make run` as on a fresh clone: the repository's tracked files copied, free ports in its .env,
no models; the launcher started there and stopped as Ctrl-C stops it. Shared by
tests/test_first_run.py and bench/first_run.py."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import settings

# TensorFlow's and absl's own lines (I0000 ..., E0000 ..., W0000 ...), oneDNN's notices, and
# Python tracebacks and warnings: what the launcher's terminal must not show.
FOREIGN = re.compile(r"^[IWEF]\d{4} |oneDNN|absl::|Traceback|Warning:|^\s+File ", re.M)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (free once this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_repository(target: Path) -> dict[str, int]:
    """The tracked files into target, with free ports in its .env; returns the ports."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=settings.ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (settings.ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(settings.ROOT / name, target / name)
    ports = {"REST_API_PORT": free_port(), "GRPC_PORT": free_port(), "CLIENT_PORT": free_port()}
    env = target / ".env"
    lines = [
        f"{key}={ports[key]}" if key in ports else line
        for line in env.read_text().splitlines()
        for key in [line.partition("=")[0]]
    ]
    env.write_text("\n".join(lines) + "\n")
    return ports


def launch(root: Path, output, env: dict[str, str]) -> subprocess.Popen:
    """scripts/start_server_and_app.py in the copy, with this virtual environment and the
    environment `env`, its terminal written to `output`."""
    return subprocess.Popen(
        [sys.executable, "scripts/start_server_and_app.py"],
        cwd=root,
        env={**env, "PYTHONPATH": str(root)},
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # interrupt() reaches it and its children, as a terminal's Ctrl-C
    )


def interrupt(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
