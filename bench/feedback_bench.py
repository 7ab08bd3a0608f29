"""People's corrections make the next version: how much it gains on their handwriting, and at what
cost on everyone else's and in time.

    MNIST_DIR=/path/to/mnist python -m bench.feedback_bench [--start runs/folds/default/1]

The start is a version trained with one fold of UJI writers kept out (`python -m train
--uji-fold K`; `python -m bench.accuracy_bench` trains such versions under runs/folds/default).
Those eight writers, whom it never saw, are the people who correct it: the first sample of each
of their digits, drawn on the canvas --drawings times in the app's range of sizes and pens
(train/canvas_digits.py's uji_canvas), goes into a new feedback store with what the start read.
Then the update, timed as a person runs it:

    python -m train --data idx:$MNIST_DIR --feedback STORE --from-version latest

and the start and the new version are measured through their serving signatures, each canvas
through tests/image_reference.py's to_mnist (the predict_image graph's Python twin), on: the same
writers' second samples (never stored, never trained on), drawn the same way; scikit-learn's
digits (13 other writers, never trained on); MNIST's test set. Prints the figures.
"""

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import settings
from tests.dev_scores import held_out_fold, predict
from tests.image_reference import to_mnist
from train import uji
from train.canvas_digits import sklearn_digits, uji_canvas

DEFAULT_START = settings.ROOT / "runs" / "folds" / "default" / "1"


def canvas_png(canvas: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(canvas).save(out, format="PNG")
    return out.getvalue()


def drawn(digits: list[uji.UjiDigit], times: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Each digit drawn `times` on the canvas, in a style of its own each time."""
    canvases, labels = [], []
    for i, digit in enumerate(digits):
        for r in range(times):
            canvases.append(uji_canvas(digit, np.random.default_rng((seed, 20, i, r))))
            labels.append(digit.digit)
    return canvases, np.array(labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start",
        type=Path,
        default=DEFAULT_START,
        help="a version trained with a UJI fold kept out (default: %(default)s)",
    )
    parser.add_argument(
        "--mnist",
        type=Path,
        default=settings.mnist_dir(),
        help="the four MNIST IDX files (default: MNIST_DIR)",
    )
    parser.add_argument(
        "--drawings",
        type=int,
        default=5,
        help="how many times each stored digit is drawn (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work", type=Path, help="keep the store and versions here (default: a temporary folder)"
    )
    parser.add_argument("train_flags", nargs="*", help="more python -m train flags, after --")
    args = parser.parse_args(argv)
    if args.mnist is None or not args.mnist.is_dir():
        parser.error("give the MNIST folder with --mnist DIR or MNIST_DIR")
    start = args.start
    if not (start / "saved_model.pb").is_file():
        parser.error(f"{start} is not a version folder (python -m bench.accuracy_bench makes one)")
    fold = held_out_fold(start)
    if fold is None:
        parser.error(f"{start} trained on every UJI writer; give a version of --uji-fold K")

    work = args.work or Path(tempfile.mkdtemp(prefix="feedback-bench-"))
    base = work / settings.MODEL_NAME
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    shutil.copytree(start, base / "1")  # the starting version, as version 1 of a fresh folder
    db = work / "feedback.sqlite"
    db.unlink(missing_ok=True)

    writers = uji.split_writers(uji.read(), fold)[1]
    stored_canvases, stored_labels = drawn(
        [d for d in writers if d.sample == 1], args.drawings, args.seed
    )
    other_canvases, other_labels = drawn(
        [d for d in writers if d.sample == 2], args.drawings, args.seed
    )
    stored = np.stack([to_mnist(c) for c in stored_canvases])
    others = np.stack([to_mnist(c) for c in other_canvases])
    scans = list(sklearn_digits(args.seed))
    scan_digits = np.stack([to_mnist(c) for c, _ in scans])
    scan_labels = np.array([label for _, label in scans])
    before = predict(base / "1", stored)

    from feedback.store import open_store

    store = open_store(str(db))
    for i, canvas in enumerate(stored_canvases):
        store.add(
            canvas_png(canvas),
            [stored[i]],
            str(stored_labels[i]),
            "canvas",
            prediction=str(before[i].argmax()),
            probabilities=before[i : i + 1],
            model_name=settings.MODEL_NAME,
            model_version=1,
        )
    store.close()
    print(
        f"store {db}: {len(stored)} drawings of the {len(uji.FOLDS[fold])} writers of UJI fold "
        f"{fold} (version 1 read {np.mean(before.argmax(1) == stored_labels):.2%} of them "
        f"right); measured on their {len(others)} drawings of the other samples",
        flush=True,
    )

    command = [
        sys.executable,
        "-m",
        "train",
        "--data",
        f"idx:{args.mnist}",
        "--feedback",
        str(db),
        "--from-version",
        "latest",
        "--model-base-path",
        str(base),
        "--verbose",
        "2",
        # The start's own recipe: the corrected writers reach training only as corrections.
        "--uji-fold",
        str(fold),
        *args.train_flags,
    ]
    print("$ " + " ".join(command), flush=True)
    started, cpu_started = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    if subprocess.run(command, cwd=settings.ROOT).returncode != 0:
        print("training failed (see above)", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    cpu_ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time as well: on a shared machine the wall-clock time says more about the neighbours.
    cpu = (cpu_ended.ru_utime - cpu_started.ru_utime) + (cpu_ended.ru_stime - cpu_started.ru_stime)

    metrics = json.loads((base / "2" / "assets.extra" / "metrics.json").read_text())
    figures = metrics["feedback"]

    # Each version once, on both sets: the other samples first, then the scans.
    images, labels = (
        np.concatenate([others, scan_digits]),
        np.concatenate([other_labels, scan_labels]),
    )
    right = {v: predict(base / v, images).argmax(1) == labels for v in ("1", "2")}
    print("\n| figure | before | after | change |\n| --- | ---: | ---: | ---: |")
    for name, part in [
        ("the corrected writers' other digits", slice(0, len(others))),
        ("scikit-learn's digits (other writers)", slice(len(others), None)),
    ]:
        a, b = right["1"][part].mean(), right["2"][part].mean()
        print(f"| {name} | {a:.2%} | {b:.2%} | {(b - a) * 100:+.2f} points |")
    mnist_before, mnist_after = figures["mnist_test_accuracy_before"], metrics["test_accuracy"]
    print(
        f"| MNIST test | {mnist_before:.2%} | {mnist_after:.2%} | "
        f"{(mnist_after - mnist_before) * 100:+.2f} points |"
    )
    print(
        f"\ntime: {seconds:.0f} s for the whole command ({cpu:.0f} s of CPU), of which "
        f"{metrics['training_seconds']:.0f} s training ({metrics['epochs']} epoch(s), "
        f"{figures['digits_trained_on']} corrections each {figures['repeats']}x; "
        f"{figures['held_aside_digits']} held aside)\nversions and store in {work}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
