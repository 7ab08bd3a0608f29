"""Accuracy of exported model versions on MNIST test and on canvas-like dev sets.

    python -m bench.accuracy_bench                        # every version under models/mnist
    python -m bench.accuracy_bench runs/a runs/b/3 --n 500 --mnist DIR
    python -m bench.accuracy_bench models/mnist/3 models/mnist/4 --average   # and their mean

Each path is a model base path (all its numeric versions) or one version folder. Dev set
canvases (train/devsets.py) are cut by the client (client/preprocess.py) and normalised by
tests/image_reference.py's `to_mnist`, the Python twin of the predict_image graph (as good as the
same answers, bench/RESULTS.md), then go through the version's `serving_default` signature.
Prints one table per version (accuracy per set, worst confusions), the "not sure" analysis (how
often the top probability is below a threshold when the answer is wrong versus right), and a
side-by-side summary.
"""

import argparse
import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import settings
from client import preprocess as client_preprocess
from client.results import NOT_SURE_BELOW
from tests import image_reference
from tests.image_reference import to_mnist
from train import devsets

CACHE_DIR = settings.ROOT / "runs" / "devsets-cache"
THRESHOLDS = tuple(sorted({0.5, 0.6, 0.7, 0.8, 0.9, 0.95, NOT_SURE_BELOW}))
# A canvas where to_mnist finds no ink gets this "prediction": always wrong, never confident.
NO_DIGIT = -1


@dataclass
class EvalSet:
    name: str
    images: np.ndarray  # (N, 28, 28) float32 0..1; zeros where to_mnist found no digit
    labels: np.ndarray  # (N,) int64
    found: np.ndarray  # (N,) bool: to_mnist returned a digit
    writers: np.ndarray | None = None  # (N,) str: who wrote each digit, for sets of real writers


def load_mnist_test(folder: Path) -> EvalSet:
    from train.data import DataError, load_idx

    try:
        dataset = load_idx(folder)
    except DataError as e:  # one line, as for a wrong model path, not a traceback
        raise SystemExit(f"{e}; give the folder with --mnist DIR") from None
    images = dataset.x_test.astype(np.float32) / 255.0
    return EvalSet("mnist_test", images, dataset.y_test, np.ones(len(images), bool))


def preprocess(name: str, samples, writers: list[str] | None = None) -> EvalSet:
    images, labels, found = [], [], []
    for canvas, label in samples:
        digit = to_mnist(canvas)
        found.append(digit is not None)
        images.append(np.zeros((28, 28), np.float32) if digit is None else digit)
        labels.append(label)
    return EvalSet(
        name,
        np.stack(images),
        np.array(labels, np.int64),
        np.array(found),
        None if writers is None else np.array(writers),
    )


def build_dev_sets(mnist: EvalSet, n: int, seed: int) -> list[EvalSet]:
    """The dev sets, preprocessed; cached on disk, keyed by the code that makes them."""
    from train import uji

    sources = (devsets, client_preprocess, image_reference, uji)
    code = b"".join(Path(m.__file__).read_bytes() for m in sources) + Path(__file__).read_bytes()
    key = hashlib.sha256(code + f"{n}/{seed}".encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"{key}.npz"
    if cache.exists():
        stored = np.load(cache)
        names = [str(s) for s in stored["names"]]
        return [
            EvalSet(
                s,
                stored[f"{s}_images"],
                stored[f"{s}_labels"],
                stored[f"{s}_found"],
                stored[f"{s}_writers"] if f"{s}_writers" in stored else None,
            )
            for s in names
        ]
    # MNIST test digits for the redrawn styles, back to uint8 as the generators take them.
    source = np.round(mnist.images[:n] * 255).astype(np.uint8)
    labels = mnist.labels[:n]
    makers = {
        "sklearn_digits": lambda: devsets.sklearn_digits(seed),
        "sklearn_digits_inked": lambda: devsets.sklearn_digits(seed, inked=True),
        "continental_1": lambda: devsets.continental_1(seed, n=min(n, 300)),
        "continental_7": lambda: devsets.continental_7(seed, n=min(n, 300)),
        **{
            f"mnist_{style}": lambda style=style: devsets.redrawn_mnist(source, labels, style, seed)
            for style in devsets.STYLES
        },
        "uji_dev": lambda: devsets.uji_dev(seed),
        **{
            f"upload_{style}": lambda style=style: devsets.uploads(source, labels, style, seed)
            for style in devsets.UPLOAD_STYLES
        },
    }
    writers = {"uji_dev": [d.writer for d in devsets.uji_dev_digits()]}
    sets = []
    for name, make in makers.items():
        started = time.perf_counter()
        sets.append(preprocess(name, make(), writers.get(name)))
        print(f"  {name}: {len(sets[-1].labels)} canvases in {time.perf_counter() - started:.0f} s")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    arrays = {"names": np.array([s.name for s in sets])}
    for s in sets:
        arrays.update({f"{s.name}_images": s.images, f"{s.name}_labels": s.labels})
        arrays[f"{s.name}_found"] = s.found
        if s.writers is not None:
            arrays[f"{s.name}_writers"] = s.writers
    np.savez_compressed(cache, **arrays)
    return sets


def version_folders(paths: list[Path]) -> list[Path]:
    folders = []
    for path in paths:
        if (path / "saved_model.pb").exists():
            folders.append(path)
        elif path.is_dir():
            numbered = [p for p in path.iterdir() if p.name.isdigit() and p.is_dir()]
            folders += sorted(numbered, key=lambda p: int(p.name))
        else:
            raise SystemExit(f"{path}: not a model base path or version folder")
    if not folders:
        raise SystemExit(f"no model versions under {', '.join(map(str, paths))}")
    return folders


def predict(folder: Path, images: np.ndarray) -> np.ndarray:
    """Top probabilities and digits from the version's serving signature: (N, 10)."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures[settings.SIGNATURE_NAME]
    out = [
        serve(image=tf.constant(images[i : i + 1000, ..., None]))["probabilities"].numpy()
        for i in range(0, len(images), 1000)
    ]
    return np.concatenate(out)


def confusions(labels: np.ndarray, predicted: np.ndarray, top: int = 4) -> str:
    pairs = Counter(
        (int(t), int(p)) for t, p in zip(labels, predicted, strict=True) if t != p
    ).most_common(top)
    return ", ".join(f"{t}->{'none' if p == NO_DIGIT else p} ({c})" for (t, p), c in pairs)


def evaluate(folder: Path | None, sets: list[EvalSet], probabilities=None) -> dict:
    """Per set: accuracy, confusions; plus (confidence, correct) of all dev set answers.
    From the version in `folder`, or from given `probabilities` (all sets' images in order)."""
    if probabilities is None:
        probabilities = predict(folder, np.concatenate([s.images for s in sets]))
    rows, dev_confidence, dev_correct, by_writer = [], [], [], {}
    start = 0
    for s in sets:
        p = probabilities[start : start + len(s.labels)]
        start += len(s.labels)
        predicted = np.where(s.found, p.argmax(axis=1), NO_DIGIT)
        confidence = np.where(s.found, p.max(axis=1), 0.0)
        correct = predicted == s.labels
        rows.append((s.name, len(s.labels), correct.mean(), confusions(s.labels, predicted)))
        if s.writers is not None:
            by_writer[s.name] = writer_rows(s, predicted)
        if s.name != "mnist_test":
            dev_confidence.append(confidence)
            dev_correct.append(correct)
    return {
        "rows": rows,
        "probabilities": probabilities,
        "confidence": np.concatenate(dev_confidence),
        "correct": np.concatenate(dev_correct),
        "by_writer": by_writer,
    }


def writer_rows(s: EvalSet, predicted: np.ndarray) -> list[tuple[str, int, float, str]]:
    """(writer, digits, accuracy, mistakes) of each writer in the set, worst first."""
    rows = []
    for writer in sorted(set(s.writers)):
        mine = s.writers == writer
        correct = predicted[mine] == s.labels[mine]
        mistakes = confusions(s.labels[mine], predicted[mine], top=5)
        rows.append((str(writer), int(mine.sum()), correct.mean(), mistakes))
    return sorted(rows, key=lambda row: (row[2], row[0]))


def print_version(folder: Path, result: dict, thresholds: tuple[float, ...]) -> None:
    import json

    metrics_path = folder / "assets.extra" / "metrics.json"
    about = ""
    if metrics_path.exists():
        m = json.loads(metrics_path.read_text())
        about = (
            f"arch {m.get('arch')}, {m.get('epochs')} epochs, trained {m.get('training_seconds')} s"
        )
    print(f"\n== {folder}  {about}")
    print(f"{'set':<20} {'n':>6} {'accuracy':>9}  worst confusions (true->predicted)")
    for name, n, accuracy, worst in result["rows"]:
        print(f"{name:<20} {n:>6} {accuracy:>9.2%}  {worst}")
    for name, writers in result.get("by_writer", {}).items():
        lowest = writers[0][2]
        print(f"{name} by writer: {len(writers)} writers, lowest {lowest:.2%}, worst first:")
        for writer, n, accuracy, mistakes in writers:
            print(f"  {writer:<18} {n:>6} {accuracy:>9.2%}  {mistakes}")
    confidence, correct = result["confidence"], result["correct"]
    print(
        f"not sure = top probability < t, on all dev set answers "
        f"({(~correct).sum()} wrong, {correct.sum()} right):"
    )
    print(
        f"{'t':>6} {'wrong flagged':>14} {'right flagged':>14} "
        f"{'acc. sure':>10} {'acc. not sure':>14}"
    )
    for t in thresholds:
        sure = confidence >= t
        wrong = (~sure[~correct]).mean() if (~correct).any() else 0.0
        right = (~sure[correct]).mean() if correct.any() else 0.0
        acc_sure = f"{correct[sure].mean():.1%}" if sure.any() else "-"
        acc_unsure = f"{correct[~sure].mean():.1%}" if (~sure).any() else "-"
        mark = "  <- client.results.NOT_SURE_BELOW" if t == NOT_SURE_BELOW else ""
        print(f"{t:>6.2f} {wrong:>14.1%} {right:>14.1%} {acc_sure:>10} {acc_unsure:>14}{mark}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[settings.MODEL_BASE_PATH])
    parser.add_argument(
        "--mnist",
        type=Path,
        default=settings.mnist_dir(),
        help="folder of the four MNIST IDX files (default: $MNIST_DIR)",
    )
    parser.add_argument("--n", type=int, default=1000, help="canvases per synthetic set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS))
    parser.add_argument(
        "--average", action="store_true", help="also score the versions' averaged probabilities"
    )
    args = parser.parse_args(argv)

    folders = version_folders(args.paths)
    if args.mnist is None:
        raise SystemExit("no MNIST folder: give --mnist DIR or set MNIST_DIR")
    mnist = load_mnist_test(args.mnist)
    print("dev sets (train/devsets.py -> client/preprocess.py -> tests/image_reference.py):")
    sets = [mnist, *build_dev_sets(mnist, args.n, args.seed)]
    results = {}
    for folder in folders:
        results[folder] = evaluate(folder, sets)
        print_version(folder, results[folder], tuple(args.thresholds))
    if args.average and len(folders) > 1:
        average = np.mean([results[f]["probabilities"] for f in folders], axis=0)
        label = Path(f"average of {len(folders)} versions")
        results[label] = evaluate(None, sets, average)
        print_version(label, results[label], tuple(args.thresholds))
        folders.append(label)
    if len(folders) > 1:
        print("\nsummary (accuracy)")
        names = [str(f) for f in folders]
        print(f"{'set':<20} " + " ".join(f"{n[-18:]:>18}" for n in names))
        for i, s in enumerate(sets):
            row = " ".join(f"{results[f]['rows'][i][2]:>18.2%}" for f in folders)
            print(f"{s.name:<20} {row}")
            if s.writers is not None:
                worst = [results[f]["by_writer"][s.name][0][2] for f in folders]
                lowest = " ".join(f"{w:>18.2%}" for w in worst)
                print(f"{'  lowest writer':<20} {lowest}")


if __name__ == "__main__":
    main()
