"""Browser latency of the client: from mouse-up to "Prediction: N" on the page.

    python -m bench.client_bench                          # serves models/mnist
    python -m bench.client_bench --model_base_path /tmp/m/mnist --drawings 20
    python -m bench.client_bench --serving_url http://localhost:8501   # a server already running
    python -m bench.client_bench --uji runs/folds/default/1   # 100 real digits it never saw

Starts the local server (unless --serving_url) and `streamlit run client` on free ports, then in
Chromium draws a digit (1, 7, 0 in turn) with mouse strokes, and times it in the page itself:
performance.now() at the mouseup event, and again when a MutationObserver sees the prediction's
heading. The canvas is reset between drawings. Prints every time and the median; target 300 ms.

With --uji VERSION the server serves that version alone (trained with a UJI fold kept out,
`python -m train --uji-fold K`), and the mouse replays --drawings of the real pen strokes of the
writers it never saw, stroke by stroke (train/uji.py), in the middle of the canvas: the bench
then also prints how many the page read right.

Each time is split in three, from marks taken in the page: `canvas`, mouse-up to the canvas's
message to Streamlit; `script`, from there to Streamlit's last message before the answer shows
(the fragment rerun: preprocessing and predict, the socket both ways, and the browser working
through the messages before it); `page`, the browser drawing it. Which version answered is
looked up after the answer shows, so it is not in these times.

`canvas` is 200 ms and fixed: streamlit-drawable-canvas 0.13 sends a finished stroke through a
200 ms debounce (`Bc = 200` in its frontend bundle), so that quick successive strokes make one
rerun, and its Python API has no way to send sooner in freedraw mode (`update_streamlit=False`
only stops sending until its toolbar's send button). In Chromium's own trace, what follows is
mostly the page's work: each batch of Streamlit messages costs a React render (software
rendering, on cores shared with the server and the model; figures in bench/RESULTS.md).
"""

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

import settings
from tests.fresh_copy import free_port

TARGET_MS = 300
STROKES = {  # one stroke each, in a unit box
    "1": [(0.55, 0.05), (0.5, 0.95)],
    "7": [(0.1, 0.08), (0.9, 0.08), (0.42, 0.95)],
    "0": [
        (0.5 + 0.36 * math.sin(a), 0.5 - 0.45 * math.cos(a))
        for a in [i * math.pi / 20 for i in range(41)]
    ],
}
HEADING_SHOWN = """[...document.querySelectorAll('h2')].some(
      h => h.textContent.startsWith('Prediction:'))"""
# Runs in the page before its own scripts: marks the mouseup, the canvas's message to Streamlit
# (the first WebSocket send after it), the last message from Streamlit before the answer shows,
# and the first prediction heading.
TIMING_SCRIPT = """
window.__bench = {up: 0, sent: 0, received: 0, shown: 0};
document.addEventListener('mouseup', () => {
  window.__bench = {up: performance.now(), sent: 0, received: 0, shown: 0};
}, true);
window.WebSocket = class extends WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', () => {  // before the page's own handlers
      const b = window.__bench;
      if (b.sent && !b.shown) b.received = performance.now();
    });
  }
  send(data) {
    const b = window.__bench;
    if (b.up && !b.sent) b.sent = performance.now();
    return super.send(data);
  }
};
new MutationObserver(() => {
  const b = window.__bench;
  if (b.up && b.received && !b.shown && HEADING_SHOWN) b.shown = performance.now();
}).observe(document, {subtree: true, childList: true, characterData: true});
""".replace("HEADING_SHOWN", HEADING_SHOWN)


def wait_until(check, what: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what}: the process exited with {process.returncode}")
        try:
            if check():
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.3)
    sys.exit(f"{what}: not ready within {seconds:g} s")


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(args, cwd=settings.ROOT, stdout=out, stderr=out, env=env)


def phases(marks: dict) -> dict[str, float]:
    """Where the time went: until the canvas sent (its debounce), until Streamlit's last
    message before the answer showed (the script rerun and the socket), then the page drawing."""
    if not (marks["sent"] and marks["received"]):
        return {}
    return {
        "canvas": marks["sent"] - marks["up"],
        "script": marks["received"] - marks["sent"],
        "page": marks["shown"] - marks["received"],
    }


def uji_drawings(version: Path, count: int) -> list[tuple[str, list[list[tuple[float, float]]]]]:
    """`count` digits of the writers the version never saw, each as strokes in fractions of the
    canvas: the digit's longer side spans 70% of it, centred; a dozen points a stroke, so that
    the mouse draws a digit faster than the canvas's send delay and the page answers once."""
    import numpy as np

    from tests.dev_scores import held_out_fold
    from train import uji

    fold = held_out_fold(version)
    if fold is None:
        sys.exit(f"{version} trained on every UJI writer; give a version of --uji-fold K")
    digits = uji.split_writers(uji.read(), fold)[1]
    chosen = sorted(np.random.default_rng(0).permutation(len(digits))[:count])
    drawings = []
    for digit in (digits[i] for i in chosen):
        points = np.concatenate(digit.strokes)
        low, extent = points.min(axis=0), max(np.ptp(points, axis=0).max(), 1e-9)
        middle = (points.max(axis=0) - low) / extent / 2
        strokes = []
        for stroke in digit.strokes:
            keep = np.unique(np.linspace(0, len(stroke) - 1, 12).round().astype(int))
            unit = ((stroke[keep] - low) / extent - middle) * 0.7 + 0.5
            strokes.append([(float(x), float(y)) for x, y in unit])
        drawings.append((str(digit.digit), strokes))
    return drawings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_base_path", type=Path, default=settings.MODEL_BASE_PATH)
    parser.add_argument("--serving_url", help="use this running server instead of starting one")
    parser.add_argument("--drawings", type=int, help="how many (default: 20, with --uji 100)")
    parser.add_argument("--uji", type=Path, metavar="VERSION", help="replay real digits to it")
    args = parser.parse_args()
    if args.uji is not None:
        drawings = uji_drawings(args.uji, args.drawings or 100)
        args.model_base_path = Path(tempfile.mkdtemp(prefix="client_bench-uji-")) / "mnist"
        shutil.copytree(args.uji, args.model_base_path / "1")
    else:
        shapes = {d: [[(0.2 + x * 0.6, 0.1 + y * 0.8) for x, y in s]] for d, s in STROKES.items()}
        drawings = list(shapes.items()) * -(-(args.drawings or 20) // 3)
        drawings = drawings[: args.drawings or 20]

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    logs = Path(tempfile.mkdtemp(prefix="client_bench-"))
    processes = []
    try:
        serving_url = args.serving_url
        if serving_url is None:
            if not any(p.name.isdigit() for p in args.model_base_path.glob("*")):
                sys.exit(f"no model version under {args.model_base_path}: train one first")
            port = free_port()
            server = start(
                [sys.executable, "-m", "serving", "--rest_api_port", str(port), "--port", "0"]
                + ["--model_name", settings.MODEL_NAME]
                + ["--model_base_path", str(args.model_base_path)],
                logs / "server.log",
            )
            processes.append(server)
            serving_url = f"http://127.0.0.1:{port}"
            status_url = f"{serving_url}/v1/models/{settings.MODEL_NAME}"
            wait_until(
                lambda: any(
                    v["state"] == "AVAILABLE"
                    for v in requests.get(status_url, timeout=1).json()["model_version_status"]
                ),
                "the server",
                server,
            )
        app_port = free_port()
        app = start(
            [sys.executable, "-m", "streamlit", "run", "client", "--server.port", str(app_port)]
            + ["--server.headless", "true", "--browser.gatherUsageStats", "false"],
            logs / "streamlit.log",
            env={**os.environ, "TF_SERVING_URL": serving_url},
        )
        processes.append(app)
        app_url = f"http://127.0.0.1:{app_port}"
        wait_until(lambda: requests.get(f"{app_url}/_stcore/health", timeout=1).ok, "the app", app)

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=settings.CHROMIUM, args=settings.CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.add_init_script(TIMING_SCRIPT)
            page.goto(app_url)
            canvas = page.locator("canvas.upper-canvas")
            canvas.wait_for(timeout=60_000)
            times, splits, right = [], {}, 0
            for i, (label, strokes) in enumerate([drawings[0], *drawings]):  # a warm-up first
                page.get_by_role("button", name="Reset canvas & history").click()
                page.get_by_text("Draw a digit in the black box.").wait_for(timeout=30_000)
                try:
                    page.wait_for_function(f"!({HEADING_SHOWN})", timeout=30_000)
                except PlaywrightTimeout:
                    text = page.locator("body").inner_text()
                    sys.exit(f"an answer stayed after the reset; the page says:\n{text}")
                box = canvas.bounding_box()
                for stroke in strokes:
                    points = [
                        (box["x"] + x * box["width"], box["y"] + y * box["height"])
                        for x, y in stroke
                    ]
                    page.mouse.move(*points[0])
                    page.mouse.down()
                    for point in points[1:]:
                        page.mouse.move(*point, steps=8 if len(points) < 5 else 2)
                    page.mouse.up()
                page.wait_for_function("window.__bench.shown > 0", timeout=30_000)
                marks = page.evaluate("window.__bench")
                shown = page.locator("h2", has_text="Prediction:").first.inner_text()
                if i > 0:
                    right += shown.split(":")[-1].strip() == label
                    times.append(marks["shown"] - marks["up"])
                    parts = phases(marks)
                    for name, value in parts.items():
                        splits.setdefault(name, []).append(value)
                    print(
                        f"{i:3d}  drew {label}  {shown:<16} {times[-1]:6.0f} ms"
                        + "".join(f"   {n} {v:4.0f}" for n, v in parts.items())
                    )
            browser.close()
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)

    median = statistics.median(times)
    verdict = "meets" if median < TARGET_MS else "misses"
    print(
        f"\nmouse-up to prediction shown, {len(times)} drawings: median {median:.0f} ms, "
        f"min {min(times):.0f}, max {max(times):.0f} ({verdict} the {TARGET_MS} ms target)"
    )
    print(f"read right: {right} of {len(times)} ({right / len(times):.0%})")
    if splits:
        print("medians: " + ", ".join(f"{n} {statistics.median(v):.0f}" for n, v in splits.items()))


if __name__ == "__main__":
    main()
