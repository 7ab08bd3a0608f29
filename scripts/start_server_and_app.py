"""`make run`: train a first model if there is none, then start the local server and the app.

Both run until Ctrl-C, which stops them cleanly. Ports, model name and paths come from settings.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import settings
from export.versions import list_versions

SERVING_DIR = settings.ROOT / "serving"
# Where the serving container finds serving/'s files (serving/Dockerfile, compose, Kubernetes).
CONFIG_DIR = "/etc/tfserving"
# What docker compose mounts at /models: the config's base_path /models/mnist resolves inside it.
MODELS_ROOT = settings.MODEL_BASE_PATH.parent


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


def train_first_model() -> None:
    mnist_dir = os.environ.get("MNIST_DIR")
    data = f"idx:{mnist_dir}" if mnist_dir else "tfds"
    print(f"No model in {settings.MODEL_BASE_PATH} yet: training a first one (--data {data}).")
    cmd = [sys.executable, "-m", "train", "--data", data]
    cmd += ["--model-base-path", str(settings.MODEL_BASE_PATH)]
    if subprocess.run(cmd).returncode != 0:
        sys.exit("Training failed (see above). Offline? Set MNIST_DIR to a folder of IDX files.")


def wait_until_serving(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("The local server stopped while starting (see above).")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if b'"AVAILABLE"' in answer.read():
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"The local server did not serve a model within {seconds:.0f} s: {url}")


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
    if not list_versions(settings.MODEL_BASE_PATH):
        train_first_model()

    # The same configuration files and flags as the TF Serving container.
    serving = ["serving", "--models_root", str(MODELS_ROOT)]
    serving += ["--rest_api_port", str(settings.REST_API_PORT), "--port", str(settings.GRPC_PORT)]
    server = subprocess.Popen([sys.executable, "-m", *serving, *container_flags()])
    app = ["streamlit", "run", str(settings.ROOT / "client")]
    app += ["--server.port", str(settings.CLIENT_PORT), "--server.address", "localhost"]
    app += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    client = subprocess.Popen(
        [sys.executable, "-m", *app],
        env={**os.environ, "TF_SERVING_URL": settings.DEFAULT_SERVING_URL},
    )
    status_url = f"{settings.DEFAULT_SERVING_URL}/v1/models/{settings.MODEL_NAME}"
    try:
        wait_until_serving(status_url, server)
        print(
            f"\n  Model server (TF Serving REST API): {status_url}\n"
            f"  Model server (TF Serving gRPC API): localhost:{settings.GRPC_PORT}\n"
            f"  Draw a digit:                       http://localhost:{settings.CLIENT_PORT}\n"
            "  Ctrl-C stops both.\n",
            flush=True,
        )
        while server.poll() is None and client.poll() is None:
            time.sleep(0.5)
        sys.exit("The server or the client stopped (see above); stopping the other.")
    except KeyboardInterrupt:
        print("\nStopping.")
        wait((client, server), 10)  # a Ctrl-C in the terminal reached them too
    finally:
        stop(client, server)


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
    except KeyboardInterrupt:  # Ctrl-C while the first model trains: training says where it was
        sys.exit("\nStopped.")
