"""`make run`: the local server and the app, with a model to serve within a couple of minutes.

Without a version, a quick first model is trained (one model, three epochs: about a minute on 2
cores), the server and the app start on it, and the full default recipe trains in the background
at a lower CPU priority; once it is exported the server swaps to it while it serves. A later
`make run` serves at once, and trains the full model again if it had not finished. Ctrl-C stops
everything. The terminal shows what happens; TensorFlow's and the server's own output goes to
settings.RUN_LOG. Ports, model name and paths come from settings.
"""

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import settings
from export.versions import list_versions
from train import progress

SERVING_DIR = settings.ROOT / "serving"
# Where the serving container finds serving/'s files (serving/Dockerfile, compose, Kubernetes).
CONFIG_DIR = "/etc/tfserving"
# What docker compose mounts at /models: the config's base_path /models/mnist resolves inside it.
MODELS_ROOT = settings.MODEL_BASE_PATH.parent
# The first model: one model of three epochs, quick to train and close to the full one
# (bench/RESULTS.md).
QUICK_FLAGS = ["--members", "1", "--epochs", "3"]
# Extra training flags for both runs, e.g. a tiny schedule for tests ("--data sample --limit 500").
EXTRA_FLAGS = shlex.split(os.environ.get("MAKE_RUN_TRAIN_FLAGS", ""))


def container_flags() -> list[str]:
    """TF Serving's flags (serving/model_server.flags, as the container's entrypoint reads them:
    comments dropped, split on whitespace), their /etc/tfserving paths made local.

    The file holds no ports: the container takes them from .env, and so does settings.
    """
    text = (SERVING_DIR / "model_server.flags").read_text()
    flags = " ".join(line.split("#")[0] for line in text.splitlines()).split()
    return [flag.replace(CONFIG_DIR, str(SERVING_DIR)) for flag in flags]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def say(text: str) -> None:
    print(text, flush=True)


def train_command(*flags: str) -> list[str]:
    mnist_dir = os.environ.get("MNIST_DIR")
    data = f"idx:{mnist_dir}" if mnist_dir else "tfds"
    command = [sys.executable, "-m", "train", "--data", data, *flags, *EXTRA_FLAGS]
    command += ["--model-base-path", str(settings.MODEL_BASE_PATH), "--verbose", "2"]
    return command + ["--progress-file", str(settings.TRAINING_PROGRESS)]


def start(command: list[str], **options) -> subprocess.Popen:
    settings.RUN_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(settings.RUN_LOG, "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **options)


def log_tail(lines: int = 15) -> str:
    text = settings.RUN_LOG.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


def train_first_model() -> None:
    """The quick model, in the foreground, its progress as a bar on one terminal line."""
    say(f"No model in {settings.MODEL_BASE_PATH} yet: training a quick first one (about a minute).")
    settings.TRAINING_PROGRESS.unlink(missing_ok=True)
    trainer = start(train_command(*QUICK_FLAGS))
    while trainer.poll() is None:
        done = (progress.read(settings.TRAINING_PROGRESS) or {}).get("fraction", 0.0)
        bar = "#" * round(30 * done)
        print(f"\r  [{bar:<30}] {done:4.0%}", end="", flush=True)
        time.sleep(0.5)
    print()
    if trainer.returncode != 0:
        sys.exit(
            f"Training failed; the last lines of {settings.RUN_LOG}:\n{log_tail()}\n"
            "Offline? Set MNIST_DIR to a folder of the MNIST IDX files."
        )
    done = progress.read(settings.TRAINING_PROGRESS) or {}
    say(
        f"First model: version {done.get('version')}, "
        f"{done.get('test_accuracy', 0):.2%} on MNIST's test set."
    )
    # The full model is still to come: a later `make run` trains it if this one does not finish.
    progress.write(settings.TRAINING_PROGRESS, state="queued", fraction=0.0)


def full_model_pending() -> bool:
    """Whether the full model is still to train: queued or interrupted. Versions made some other
    way (no progress file) are taken as they are."""
    state = progress.read(settings.TRAINING_PROGRESS)
    return state is not None and state.get("state") != "exported"


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"The local server stopped while starting:\n{log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if b'"AVAILABLE"' in answer.read():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"The local server did not serve a model within {seconds:.0f} s: {url}")


def start_server_and_app() -> tuple[subprocess.Popen, subprocess.Popen]:
    # The same configuration files and flags as the TF Serving container.
    serving = ["serving", "--models_root", str(MODELS_ROOT)]
    serving += ["--rest_api_port", str(settings.REST_API_PORT), "--port", str(settings.GRPC_PORT)]
    server = start([sys.executable, "-m", *serving, *container_flags()])
    app = ["streamlit", "run", str(settings.ROOT / "client")]
    app += ["--server.port", str(settings.CLIENT_PORT), "--server.address", "localhost"]
    app += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    client = start(
        [sys.executable, "-m", *app],
        env={**os.environ, "TF_SERVING_URL": settings.DEFAULT_SERVING_URL},
    )
    return server, client


def train_in_background() -> subprocess.Popen:
    say("Training the full model in the background (the app shows its progress); the server")
    say("swaps to it by itself when it is exported.")
    progress.write(settings.TRAINING_PROGRESS, state="queued", fraction=0.0)
    return start(train_command(), preexec_fn=lambda: os.nice(10))


def background_finished(trainer: subprocess.Popen) -> None:
    if trainer.returncode == 0:
        done = progress.read(settings.TRAINING_PROGRESS) or {}
        say(
            f"The full model is exported as version {done.get('version')} "
            f"({done.get('test_accuracy', 0):.2%} on MNIST's test set); the server swaps to it."
        )
    else:
        say(f"Background training stopped; the last lines of {settings.RUN_LOG}:\n{log_tail()}")


def main() -> None:
    # Ctrl-C (and a plain `kill`) end the wait below, even where SIGINT was inherited as ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    for port, what in [
        (settings.REST_API_PORT, "server's REST API"),
        (settings.GRPC_PORT, "server's gRPC API"),
        (settings.CLIENT_PORT, "client"),
    ]:
        if port_in_use(port):
            sys.exit(f"Port {port} (the {what}'s) is already in use: stop what uses it and retry.")
    say(f"TensorFlow's and the server's own output: {settings.RUN_LOG}")
    if not list_versions(settings.MODEL_BASE_PATH):
        train_first_model()
    server, client = start_server_and_app()
    trainer = None
    status_url = f"{settings.DEFAULT_SERVING_URL}/v1/models/{settings.MODEL_NAME}"
    try:
        wait_until_serving(status_url, server)
        say(
            f"\n  Model server (TF Serving REST API): {status_url}\n"
            f"  Model server (TF Serving gRPC API): localhost:{settings.GRPC_PORT}\n"
            f"  Draw a digit:                       http://localhost:{settings.CLIENT_PORT}\n"
            "  Ctrl-C stops everything.\n"
        )
        if full_model_pending():
            trainer = train_in_background()
        while server.poll() is None and client.poll() is None:
            if trainer is not None and trainer.poll() is not None:
                background_finished(trainer)
                trainer = None
            time.sleep(0.5)
        sys.exit(
            f"The server or the app stopped; the last lines of {settings.RUN_LOG}:\n{log_tail()}"
        )
    except KeyboardInterrupt:
        say("\nStopping.")
        wait((client, server), 10)  # a Ctrl-C in the terminal reached them too
    finally:
        stop(*(p for p in (trainer, client, server) if p is not None))


def wait(processes: tuple[subprocess.Popen, ...], seconds: float) -> bool:
    """Whether all of them have ended within the time."""
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            return False
    return True


def stop(*processes: subprocess.Popen) -> None:
    """Ask (SIGTERM) the ones still running to stop, then insist."""
    for ask in (subprocess.Popen.terminate, subprocess.Popen.kill):
        for process in processes:
            if process.poll() is None:
                ask(process)
        if wait(processes, 10):
            return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C while the first model trains
        sys.exit("\nStopped.")
