"""The local server's overhead and throughput over loopback (prints figures; not a test).

    python bench/serving_bench.py [--model_base_path models/mnist] [--seconds 5]

1. The model's serving signature called in-process with one image (p50, p99), alternating with
2. the same image sent to `python -m serving` over a keep-alive connection (p50, p99), so both
   see the same machine load: the ratio of the p50s is the server's overhead (target <= 1.3).
3. Throughput with 1, 8 and 32 concurrent clients, batching off and on (serving/batching.config):
   32 clients with batching on against the sequential rate (target >= 5x).

Clients run in this process on the same machine as the server, as a browser would share it.
Without a version under --model_base_path, a quick one is trained (speed does not depend on
accuracy).
"""

import argparse
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import settings

ROOT = settings.ROOT


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def latest_version(base: Path) -> Path | None:
    versions = [p for p in base.glob("*") if p.name.isdigit() and p.is_dir()]
    return max(versions, key=lambda p: int(p.name)) if versions else None


def quick_model(tmp: Path) -> Path:
    from train.run import TrainConfig, run

    base = tmp / "mnist"
    run(TrainConfig(data="sample", limit=280, batch_size=256, epochs=1, model_base_path=base,
                    verbose=0))  # fmt: skip
    return base


def load_signature(version: Path):
    import tensorflow as tf

    signature = tf.saved_model.load(str(version)).signatures["serving_default"]

    def call(image: np.ndarray) -> None:
        signature(image=tf.constant(image[None]))["probabilities"].numpy()

    return call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base: Path, port: int, batching: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "serving", "--model_name", settings.MODEL_NAME,
               "--model_base_path", str(base), "--rest_api_port", str(port)]  # fmt: skip
    if batching:
        command += ["--enable_batching", "--batching_parameters_file",
                    str(ROOT / "serving" / "batching.config")]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", f"/v1/models/{settings.MODEL_NAME}")
            if b"AVAILABLE" in conn.getresponse().read():
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("The server did not start within 180 s.")


def sequential(port: int, body: bytes, call, image, n: int) -> tuple[list[float], list[float]]:
    """(in-process, HTTP) times, measured alternately so both see the same machine load."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    path = f"/v1/models/{settings.MODEL_NAME}:predict"
    headers = {"Content-Type": "application/json"}
    local, remote = [], []
    for i in range(n + 20):
        start = time.perf_counter()
        call(image)
        middle = time.perf_counter()
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        end = time.perf_counter()
        if response.status != 200:
            sys.exit(f"request failed: {response.status}")
        if i >= 20:  # the first ones warm up the connection and the server
            local.append(middle - start)
            remote.append(end - middle)
    return local, remote


def throughput(port: int, body: bytes, clients: int, seconds: float) -> float:
    path = f"/v1/models/{settings.MODEL_NAME}:predict"
    counts = [0] * clients
    failures = []
    stop = threading.Event()

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except OSError as e:  # counted, then a fresh connection
                failures.append(type(e).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            if response.status == 200:
                counts[i] += 1
            else:
                failures.append(response.status)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # ramp up
    before, start = sum(counts), time.perf_counter()
    time.sleep(seconds)
    done, elapsed = sum(counts) - before, time.perf_counter() - start
    stop.set()
    for thread in threads:
        thread.join()
    if failures:
        print(f"  ({len(failures)} failed requests: {sorted(set(failures))})")
    return done / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_base_path", type=Path, default=settings.MODEL_BASE_PATH)
    p.add_argument("--requests", type=int, default=300, help="sequential requests")
    p.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    args = p.parse_args()

    tmp = tempfile.TemporaryDirectory()
    base = args.model_base_path
    if latest_version(base) is None:
        print(f"No version under {base}: training a quick one (speed only).")
        base = quick_model(Path(tmp.name))
    version = latest_version(base)
    print(f"Model: {version}")

    image = np.random.default_rng(0).random((28, 28, 1), dtype=np.float32)
    body = json.dumps({"instances": [image.tolist()]}).encode()

    call = load_signature(version)
    results = {}
    for batching in (False, True):
        port = free_port()
        server = start_server(base, port, batching)
        try:
            label = "batching on " if batching else "batching off"
            if not batching:
                local_times, seq_times = sequential(port, body, call, image, args.requests)
                local, seq = percentiles(local_times), percentiles(seq_times)
                seq_rate = len(seq_times) / sum(seq_times)
                print(
                    f"in-process signature call, batch 1: p50 {local[0]:.2f} ms"
                    f"  p99 {local[1]:.2f} ms"
                )
                print(
                    f"HTTP sequential, 1 image/request:   p50 {seq[0]:.2f} ms  p99 {seq[1]:.2f} ms"
                    f"  ({seq_rate:.0f} req/s)"
                )
            for clients in (1, 8, 32):
                rate = throughput(port, body, clients, args.seconds)
                results[(batching, clients)] = rate
                print(f"{label}, {clients:2d} clients: {rate:7.1f} req/s")
        finally:
            server.terminate()
            server.wait()

    print()
    print(f"overhead: HTTP p50 / in-process p50 = {seq[0] / local[0]:.2f}x  (target <= 1.3x)")
    best = results[(True, 32)]
    print(
        f"32 clients, batching on / sequential = {best / seq_rate:.2f}x  (target >= 5x); "
        f"batching off: {results[(False, 32)] / seq_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
