"""Requests meant to freeze, bloat or mislead the local server, each timed beside a steady client.

    python -m bench.hardening_probe [--model-base-path models/mnist]

Starts `python -m serving` on a copy of the newest version (a tiny model trained here when none is
given), then, while one client sends ordinary predictions on its own connection: 100,000 and 5,000
nested brackets, a few dozen bytes of WebP that say 16,383 x 16,383 pixels, 5,000 predictions to
made-up 2 KB model names (then the metrics page's size and scrape time), and a good export in place
of a version that failed to load. Prints each answer, its time, the server's memory (RSS) before
and after, and the steady client's failures.
"""

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

from export.versions import list_versions
from tests.image_files import huge_webp

METRICS = "/monitoring/prometheus/metrics"
IMAGE = [[[0.0]] * 28] * 28


class Steady:
    def __init__(self, url: str):
        self.url, self.answers, self.failures, self.stop = url, 0, 0, threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    response = session.post(
                        self.url + "/v1/models/mnist:predict",
                        json={"instances": [IMAGE]},
                        timeout=5,
                    )
                    ok = response.status_code == 200
                except requests.RequestException:
                    ok = False
                self.answers += ok
                self.failures += not ok

    def finish(self) -> str:
        self.stop.set()
        self.thread.join()
        return f"steady client {self.answers} answered, {self.failures} failed"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(url: str, pid: int, what: str, send) -> None:
    steady = Steady(url)
    time.sleep(0.5)
    before = rss_mb(pid)
    start = time.perf_counter()
    result = send()
    seconds = time.perf_counter() - start
    time.sleep(0.5)
    print(
        f"{what:34} {result:48.48} {seconds * 1000:9.1f} ms  "
        f"RSS {before:6.0f} -> {rss_mb(pid):6.0f} MB  {steady.finish()}"
    )


def answer(response: requests.Response) -> str:
    return f"{response.status_code} {' '.join(response.text.split())[:40]}"


def wait_until(condition, timeout: float = 120) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(0.05)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-base-path", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hardening-"))
    base = work / "mnist"
    if args.model_base_path:
        source = args.model_base_path / str(list_versions(args.model_base_path)[-1])
        shutil.copytree(source, base / "1")
    else:  # one training step on the sample digits: the contract, not the accuracy, matters here
        from train.run import TrainConfig, run

        run(
            TrainConfig(
                data="sample",
                limit=280,
                batch_size=256,
                epochs=1,
                members=1,
                model_base_path=base,
                verbose=0,
            )
        )
    port = 18501
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--model_name",
            "mnist",
            "--model_base_path",
            str(base),
            "--rest_api_port",
            str(port),
            "--port",
            "0",
            "--file_system_poll_wait_seconds",
            "0.5",
            "--max_num_load_retries",
            "0",
            "--monitoring_config_file",
            str(Path(__file__).resolve().parents[1] / "serving" / "monitoring.config"),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _up(url))
        predict = url + "/v1/models/mnist:predict"
        for depth in (100_000, 5_000):
            body = ('{"instances":' + "[" * depth + "0" + "]" * depth + "}").encode()
            probe(
                url,
                server.pid,
                f"{depth:,}-deep JSON",
                lambda b=body: answer(requests.post(predict, data=b, timeout=120)),
            )
        webp = {
            "signature_name": "predict_image",
            "instances": [{"b64": base64.b64encode(huge_webp()).decode()}],
        }
        probe(
            url,
            server.pid,
            f"16383^2 WebP ({len(huge_webp())} bytes)",
            lambda: answer(requests.post(predict, json=webp, timeout=120)),
        )

        def unknown_names() -> str:
            with requests.Session() as session:
                for _ in range(5000):
                    name = uuid.uuid4().hex * 64
                    session.post(f"{url}/v1/models/{name}:predict", json={"instances": [IMAGE]})
            return "5,000 sent"

        page = requests.get(url + METRICS, timeout=60).text
        probe(url, server.pid, "5,000 unknown 2 KB model names", unknown_names)
        start = time.perf_counter()
        after = requests.get(url + METRICS, timeout=60).text
        scrape = time.perf_counter() - start
        print(
            f"{'metrics page':34} {len(page) / 1024:.1f} KB before, {len(after) / 1024:.1f} KB "
            f"after; scrape {scrape * 1000:.1f} ms"
        )

        (base / ".bad").mkdir()
        (base / ".bad" / "saved_model.pb").write_bytes(b"garbage")
        (base / ".bad").rename(base / "2")
        wait_until(lambda: _state(url, 2) == "END")
        shutil.rmtree(base / "2")
        shutil.copytree(base / "1", base / ".good")
        (base / ".good").rename(base / "2")
        took = wait_until(lambda: _state(url, 2) == "AVAILABLE")
        print(f"{'good export replacing failed v2':34} AVAILABLE after {took:.1f} s (poll 0.5 s)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def _up(url: str) -> bool:
    try:
        return b"AVAILABLE" in requests.get(url + "/v1/models/mnist", timeout=5).content
    except requests.RequestException:
        return False


def _state(url: str, version: int) -> str | None:
    try:
        response = requests.get(f"{url}/v1/models/mnist/versions/{version}", timeout=5)
        return response.json()["model_version_status"][0]["state"]
    except (requests.RequestException, KeyError, ValueError):
        return None


if __name__ == "__main__":
    main()
