"""Accuracy of exported model versions on MNIST test and on canvas-like dev sets.

    python -m bench.accuracy_bench                     # the default recipe by UJI writer folds
    python -m bench.accuracy_bench --folds runs/folds/b -- --uji-forms 12800   # another recipe
    python -m bench.accuracy_bench models/mnist/3 runs/a --n 500 --mnist DIR --average

Folds: the recipe (`python -m train` and the flags after --) is trained five times, each time
with one of train/uji.py's five writer-disjoint folds of UJI writers kept out, as versions 1-5 of
the --folds folder (those already there are reused). Each version is scored on every dev set, the
UJI writers on the fold it never saw; each row prints the mean over the five and their spread
(lowest, highest): a difference between recipes inside the spread is a tie. The UJI folds'
confusions, pooled, are drawn into bench/results/uji_folds_confusion.png.

Paths: each is a model base path (all its numeric versions) or one version folder, scored on its
own; the UJI row only for a version trained with a fold kept out (--uji-fold).

Dev set canvases (tests/devsets.py) are cut by the client and scored by tests/dev_scores.py.
Prints one table per version (accuracy per set, worst confusions), the "not sure" analysis (how
often the top probability is below a threshold when the answer is wrong versus right), and a
side-by-side summary.
"""

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import settings
from client import preprocess as client_preprocess
from client.results import NOT_SURE_BELOW
from tests import dev_scores, devsets, image_reference
from tests.dev_scores import EvalSet, evaluate, print_version, version_folders
from train import canvas_digits, uji

CACHE_DIR = settings.ROOT / "runs" / "devsets-cache"
RESULTS_DIR = settings.ROOT / "bench" / "results"
DEFAULT_FOLDS = settings.ROOT / "runs" / "folds" / "default"
THRESHOLDS = tuple(sorted({0.5, 0.6, 0.7, 0.8, 0.9, 0.95, NOT_SURE_BELOW}))


def build_dev_sets(mnist: EvalSet, n: int, seed: int) -> list[EvalSet]:
    """The dev sets, preprocessed; cached on disk, keyed by the code that makes them."""
    sources = (devsets, canvas_digits, client_preprocess, image_reference, uji, dev_scores)
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
        "sklearn_digits": lambda: canvas_digits.sklearn_digits(seed),
        "sklearn_digits_inked": lambda: canvas_digits.sklearn_digits(seed, inked=True),
        "continental_1": lambda: devsets.continental_1(seed, n=min(n, 300)),
        "continental_7": lambda: devsets.continental_7(seed, n=min(n, 300)),
        **{
            f"mnist_{style}": lambda style=style: devsets.redrawn_mnist(source, labels, style, seed)
            for style in devsets.STYLES
        },
        "uji": lambda: devsets.uji_digits(seed),
        **{
            f"upload_{style}": lambda style=style: devsets.uploads(source, labels, style, seed)
            for style in devsets.UPLOAD_STYLES
        },
    }
    writers = {"uji": [d.writer for d in uji.read()]}
    sets = []
    for name, make in makers.items():
        started = time.perf_counter()
        sets.append(dev_scores.preprocess(name, make(), writers.get(name)))
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


def sets_for(folder: Path, sets: list[EvalSet]) -> list[EvalSet]:
    """The sets to score a version on: the UJI writers of the fold it was trained without."""
    fold = dev_scores.held_out_fold(folder)
    return [
        dev_scores.fold_only(s, uji.FOLDS[fold]) if s.name == "uji" else s
        for s in sets
        if s.name != "uji" or fold is not None
    ]


def train_folds(folder: Path, mnist: Path, flags: list[str]) -> None:
    """Versions 1-5 of `folder`: the recipe trained with each UJI fold kept out in turn."""
    for fold in range(len(uji.FOLDS)):
        if (folder / str(fold + 1) / "saved_model.pb").exists():
            continue
        command = [sys.executable, "-m", "train", "--data", f"idx:{mnist}"]
        command += ["--uji-fold", str(fold), "--model-base-path", str(folder)]
        command += ["--version", str(fold + 1), "--verbose", "2", *flags]
        print(f"fold {fold + 1} of {len(uji.FOLDS)}: $ {' '.join(command)}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command, cwd=settings.ROOT).returncode != 0:
            raise SystemExit(f"training fold {fold + 1} failed (see above)")
        print(f"fold {fold + 1} trained in {time.perf_counter() - started:.0f} s", flush=True)


def print_folds(folders: list[Path], results: dict, thresholds: tuple[float, ...]) -> None:
    """Each set's mean over the fold versions and its spread; the UJI folds one by one."""
    print(f"\n== {len(folders)} fold versions of {folders[0].parent}")
    print(f"{'set':<20} {'mean':>8} {'lowest':>8} {'highest':>8}")
    by_set = {}  # set name: its accuracy in each fold version
    for folder in folders:
        for name, _, accuracy, _ in results[folder]["rows"]:
            by_set.setdefault(name, []).append(accuracy)
    for name, accuracies in by_set.items():
        label = "uji (unseen fold)" if name == "uji" else name
        mean, low, high = np.mean(accuracies), min(accuracies), max(accuracies)
        print(f"{label:<20} {mean:>8.2%} {low:>8.2%} {high:>8.2%}")
    folds = by_set["uji"]
    lowest = [results[f]["by_writer"]["uji"][0] for f in folders]  # worst writer first
    print(
        "uji folds: "
        + ", ".join(f"{a:.2%}" for a in folds)
        + f"; mean {np.mean(folds):.2%}, worst fold {min(folds):.2%}; lowest writer "
        + ", ".join(f"{writer} {accuracy:.0%}" for writer, _, accuracy, _ in lowest)
    )
    pooled = {
        "rows": [],
        "confidence": np.concatenate([results[f]["confidence"] for f in folders]),
        "correct": np.concatenate([results[f]["correct"] for f in folders]),
    }
    print_version(Path("the fold versions' answers, pooled"), pooled, thresholds)


def plot_uji_confusion(folders: list[Path], results: dict, sets: dict) -> Path:
    from train.report import plot_confusion

    confusion = np.zeros((10, 10), np.int64)
    for folder in folders:
        s = next(s for s in sets[folder] if s.name == "uji")
        predicted = results[folder]["predicted"]["uji"]
        found = predicted != dev_scores.NO_DIGIT
        np.add.at(confusion, (s.labels[found], predicted[found]), 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "uji_folds_confusion.png"
    title = f"UJI writers, each fold by the version that never saw it ({confusion.sum()} digits)"
    plot_confusion(confusion, path, title)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="versions to score on their own")
    parser.add_argument(
        "--folds",
        type=Path,
        help=f"train (if missing) and score a recipe by UJI writer folds in this folder "
        f"(default without paths: {DEFAULT_FOLDS.relative_to(settings.ROOT)})",
    )
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
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    args, flags = parser.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: python -m train's
    if args.mnist is None:
        raise SystemExit("no MNIST folder: give --mnist DIR or set MNIST_DIR")
    fold_folder = args.folds or (None if args.paths else DEFAULT_FOLDS)
    if fold_folder is not None:
        train_folds(fold_folder, args.mnist, flags)
    elif flags:
        parser.error(f"unrecognized arguments: {' '.join(flags)} (train flags go with --folds)")
    folders = version_folders(args.paths) if args.paths else []
    fold_versions = version_folders([fold_folder])[: len(uji.FOLDS)] if fold_folder else []
    if any(dev_scores.held_out_fold(f) is None for f in fold_versions):
        raise SystemExit(f"{fold_folder}: every version there must keep a UJI fold out")

    mnist = dev_scores.load_mnist_test(args.mnist)
    print("dev sets (tests/devsets.py -> client/preprocess.py -> tests/image_reference.py):")
    sets = [mnist, *build_dev_sets(mnist, args.n, args.seed)]
    thresholds = tuple(args.thresholds)
    results, version_sets = {}, {}
    for folder in [*folders, *fold_versions]:
        version_sets[folder] = sets_for(folder, sets)
        results[folder] = evaluate(folder, version_sets[folder])
        print_version(folder, results[folder], thresholds)
    if fold_versions:
        print_folds(fold_versions, results, thresholds)
        print(f"UJI folds' confusions: {plot_uji_confusion(fold_versions, results, version_sets)}")
    if args.average and len(folders) > 1:
        if len({dev_scores.held_out_fold(f) for f in folders}) > 1:
            raise SystemExit("--average: the versions were trained without different UJI folds")
        average = np.mean([results[f]["probabilities"] for f in folders], axis=0)
        label = Path(f"average of {len(folders)} versions")
        results[label] = evaluate(None, version_sets[folders[0]], average)
        print_version(label, results[label], thresholds)
        folders.append(label)
    if len(folders) > 1:
        print_summary(folders, results)


def print_summary(folders: list[Path], results: dict) -> None:
    print("\nsummary (accuracy)")
    names = [str(f) for f in folders]
    print(f"{'set':<20} " + " ".join(f"{n[-18:]:>18}" for n in names))
    for name in dict.fromkeys(r[0] for f in folders for r in results[f]["rows"]):
        cells = []
        for f in folders:
            row = next((r for r in results[f]["rows"] if r[0] == name), None)
            cells.append(f"{row[2]:>18.2%}" if row else f"{'-':>18}")
        print(f"{name:<20} " + " ".join(cells))


if __name__ == "__main__":
    main()
