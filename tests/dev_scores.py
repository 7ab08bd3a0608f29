"""Scoring exported versions on dev sets: what bench/accuracy_bench.py prints, and its tests check.

Canvases are cut by the client (client/preprocess.py) and normalised by tests/image_reference.py's
`to_mnist`, the Python twin of the predict_image graph, then go through the version's
`serving_default` signature.
"""

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import settings
from client.results import NOT_SURE_BELOW
from tests.image_reference import to_mnist

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
    """The digits' probabilities from the version's serving signature: (N, 10)."""
    return outputs(folder, images)["probabilities"]


@functools.cache  # a bench asks a version about several sets: loaded once
def _signature(folder: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(folder)).signatures[settings.SIGNATURE_NAME]


def outputs(folder: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    """The version's serving signature's answer for (N, 28, 28) images: probabilities, and
    is_digit and digit_score (all true and 1 from a version without them)."""
    import tensorflow as tf

    serve = _signature(folder)
    parts = [
        {k: v.numpy() for k, v in serve(image=tf.constant(images[i : i + 1000, ..., None])).items()}
        for i in range(0, len(images), 1000)
    ]
    found = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    found.setdefault("is_digit", np.ones(len(images), bool))
    found.setdefault("digit_score", np.ones(len(images), np.float32))
    return found


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
    rows, dev_confidence, dev_correct, by_writer, answers = [], [], [], {}, {}
    start = 0
    for s in sets:
        p = probabilities[start : start + len(s.labels)]
        start += len(s.labels)
        predicted = np.where(s.found, p.argmax(axis=1), NO_DIGIT)
        confidence = np.where(s.found, p.max(axis=1), 0.0)
        correct = predicted == s.labels
        answers[s.name] = predicted
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
        "predicted": answers,
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


def held_out_fold(folder: Path) -> int | None:
    """The UJI fold (train/uji.py's FOLDS) the version was trained without: its metrics say.
    None if it trained on every writer, or does not say."""
    import json

    metrics = folder / "assets.extra" / "metrics.json"
    if not metrics.exists():
        return None
    return json.loads(metrics.read_text()).get("config", {}).get("uji_fold")


def fold_only(s: EvalSet, writers: frozenset[str]) -> EvalSet:
    """The part of a set of real writers that these writers wrote."""
    mine = np.isin(s.writers, sorted(writers))
    return EvalSet(s.name, s.images[mine], s.labels[mine], s.found[mine], s.writers[mine])
