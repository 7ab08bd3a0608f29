"""`make run` from nothing: how soon the first answer, how soon the full model (prints figures).

    python -m bench.first_run [--mnist DIR] [--install]

Copies the repository (its tracked files) into a temporary folder with free ports and no models,
and runs `make run`'s launcher there (scripts/start_server_and_app.py) with this virtual
environment, so the figures are those of a clone whose venv is built. Measured from the launch:
the first answer shown in Chromium to a drawn digit, and the full model live (the server's newest
AVAILABLE version is the one the background training exported). From the first answer until the
full model has answered for 10 s, a REST client and a gRPC client keep asking, five times a
second each: every request that fails is counted. Then the terminal's lines that are not the
launcher's own (TensorFlow's, absl's, oneDNN's, tracebacks). With --install, `make`'s install
step is timed first in the copy (a new venv from the pinned requirements): a fresh clone's wait
before the launch.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

import settings
from tests.fresh_copy import FOREIGN, copy_repository, interrupt, launch

STROKE = [(0.55, 0.05), (0.5, 0.95)]  # a "1", in the canvas's unit box
PER_SECOND = 5  # requests a second from each of the two clients


def time_install(root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["make", ".venv/.installed"], cwd=root, check=True, capture_output=True)
    return time.perf_counter() - started


def first_answer(browser, app_url: str) -> None:
    """Draws a 1 in the app and waits for its answer."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for(timeout=120_000)
    page.get_by_text("Draw a digit in the black box.").wait_for(timeout=120_000)
    page.wait_for_timeout(1000)  # the canvas's own script, ready to take strokes
    box = canvas.bounding_box()
    points = [
        (box["x"] + (0.2 + x * 0.6) * box["width"], box["y"] + (0.1 + y * 0.8) * box["height"])
        for x, y in STROKE
    ]
    page.mouse.move(*points[0])
    page.mouse.down()
    page.mouse.move(*points[1], steps=8)
    page.mouse.up()
    page.get_by_text(re.compile(r"^Prediction: ")).wait_for(timeout=120_000)
    page.close()


def keep_asking(ports: dict, stop: threading.Event, counts: dict) -> list[threading.Thread]:
    """A REST and a gRPC client, each asking PER_SECOND times a second (as a person drawing
    does, about), until stop: enough to catch a failure in the swap, not so many that they
    take the background training's CPU."""
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    png = (settings.ROOT / "docs" / "digit-7.png").read_bytes()
    body = {
        "signature_name": settings.IMAGE_SIGNATURE_NAME,
        "instances": [{"b64": base64.b64encode(png).decode()}],
    }
    url = f"http://localhost:{ports['REST_API_PORT']}/v1/models/{settings.MODEL_NAME}:predict"

    def rest() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    ok = session.post(url, json=body, timeout=30).status_code == 200
                except requests.RequestException:
                    ok = False
                counts["rest" if ok else "rest failed"] += 1
                stop.wait(1 / PER_SECOND)

    def grpc_client() -> None:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = settings.MODEL_NAME
        image = np.zeros((1, 28, 28, 1), np.float32)
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
        with grpc.insecure_channel(f"localhost:{ports['GRPC_PORT']}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                try:
                    stub.Predict(request, 30)
                    counts["grpc"] += 1
                except grpc.RpcError:
                    counts["grpc failed"] += 1
                stop.wait(1 / PER_SECOND)

    threads = [threading.Thread(target=f) for f in (rest, grpc_client)]
    for thread in threads:
        thread.start()
    return threads


def newest_available(status_url: str) -> int | None:
    try:
        status = requests.get(status_url, timeout=5).json()["model_version_status"]
    except (requests.RequestException, ValueError, KeyError):
        return None
    available = [int(v["version"]) for v in status if v["state"] == "AVAILABLE"]
    return max(available) if available else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mnist", type=Path, default=settings.mnist_dir(), help="default: $MNIST_DIR")
    p.add_argument("--install", action="store_true", help="also time the venv's install")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name) / "repo"
    ports = copy_repository(root)
    if args.install:
        print(
            f"install (make .venv/.installed, a new venv): {time_install(root):.0f} s", flush=True
        )
    env = dict(os.environ)
    if args.mnist is not None:
        env["MNIST_DIR"] = str(args.mnist)
    terminal = root / "terminal.txt"
    app_url = f"http://localhost:{ports['CLIENT_PORT']}"
    status_url = f"http://localhost:{ports['REST_API_PORT']}/v1/models/{settings.MODEL_NAME}"
    counts = {"rest": 0, "rest failed": 0, "grpc": 0, "grpc failed": 0}
    stop = threading.Event()
    started = time.perf_counter()
    with open(terminal, "wb") as out:
        launcher = launch(root, out, env)
    threads = []
    try:
        while "Draw a digit:" not in terminal.read_text():
            if launcher.poll() is not None:
                sys.exit(f"make run stopped:\n{terminal.read_text()}")
            time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=settings.CHROMIUM, args=settings.CHROMIUM_ARGS
            )
            first_answer(browser, app_url)
            browser.close()
        first = time.perf_counter() - started
        print(f"make run to the first answer in the browser: {first:.0f} s", flush=True)
        threads = keep_asking(ports, stop, counts)
        progress = root / "models" / "training.json"
        while True:
            done = json.loads(progress.read_text()) if progress.exists() else {}
            if done.get("state") == "exported" and newest_available(status_url) == done["version"]:
                break
            if launcher.poll() is not None:
                sys.exit(f"make run stopped:\n{terminal.read_text()}")
            time.sleep(0.5)
        full = time.perf_counter() - started
        print(f"make run to the full model live (version {done['version']}): {full:.0f} s")
        time.sleep(10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        interrupt(launcher)
    print(
        f"requests from the first answer until 10 s after the swap: REST {counts['rest']} "
        f"answered, {counts['rest failed']} failed; gRPC {counts['grpc']} answered, "
        f"{counts['grpc failed']} failed"
    )
    text = terminal.read_text()
    foreign = [line for line in text.splitlines() if FOREIGN.search(line)]
    print(f"terminal: {len(text.splitlines())} lines, {len(foreign)} not the launcher's own")
    for line in foreign[:5]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
