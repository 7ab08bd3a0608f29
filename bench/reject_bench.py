"""How well versions say "that is not a digit", and how honest their probabilities are.

    python -m bench.reject_bench                         # the newest version under models/mnist
    python -m bench.reject_bench runs/folds/b --mnist DIR

Each version's `serving_default` answer (is_digit, digit_score, probabilities) for drawings that
it never trained on, cut and normalised as the app does (tests/dev_scores.py):

- not digits, which it should refuse: the dev writer's letters and symbols that are not
  look-alikes, and the dev kinds of doodle (train/nondigits.py, tests/devsets.py);
- real digits, which it should accept: scikit-learn's half that did not choose the threshold
  (train/calibration.py), the UJI writers of the fold it kept out (if any), and MNIST test.

Prints the share refused of each, accuracy on the accepted real digits, and the calibration error
of the top probability on them (before and after the version's temperature); draws the
digit_score of each kind of drawing against the threshold, and the letters it accepted, into
bench/results/reject.png.
"""

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

import settings
from export.saved_model import read_metrics
from tests import dev_scores, devsets
from tests.dev_scores import EvalSet, held_out_fold, load_mnist_test, version_folders
from train import calibration, nondigits, uji
from train.canvas_digits import sklearn_digits, uji_canvas

RESULTS_DIR = settings.ROOT / "bench" / "results"


def not_digits(seed: int, per_kind: int) -> tuple[EvalSet, list[str], EvalSet, list[str]]:
    letters = list(devsets.nondigit_letters(seed))
    doodles = list(devsets.doodles(seed, per_kind))
    as_negatives = lambda samples: [(c, settings.NOT_A_DIGIT) for c, _ in samples]  # noqa: E731
    return (
        dev_scores.preprocess("letters", as_negatives(letters)),
        [char for _, char in letters],
        dev_scores.preprocess("doodles", as_negatives(doodles)),
        [kind for _, kind in doodles],
    )


def real_digits(seed: int, fold: int | None) -> list[EvalSet]:
    unseen = [s for i, s in enumerate(sklearn_digits(seed)) if not calibration.sklearn_part(i)]
    sets = [dev_scores.preprocess("sklearn_digits (unseen half)", unseen)]
    if fold is not None:
        kept_out = uji.split_writers(uji.read(), fold)[1]
        rng = np.random.default_rng((seed, 40))
        samples = [(uji_canvas(d, rng), d.digit) for d in kept_out]
        sets.append(dev_scores.preprocess(f"uji fold {fold} (unseen writers)", samples))
    return sets


def answer(folder: Path, s: EvalSet) -> dict[str, np.ndarray]:
    out = dev_scores.outputs(folder, s.images)
    # A drawing where the app finds no ink is neither accepted nor a digit.
    out["is_digit"] = out["is_digit"] & s.found
    return out


def untempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    # probabilities = softmax(log p / T), so softmax(T log probabilities) is p renormalised.
    return calibration.digit_probabilities(probabilities**temperature)


def score_version(folder: Path, negatives, mnist: EvalSet | None, seed: int) -> dict:
    letters, chars, doodles, kinds = negatives
    metrics = read_metrics(folder)
    rule = metrics.get("not_a_digit") or {"threshold": 0.0, "temperature": 1.0}
    print(
        f"\n{folder}: threshold {rule['threshold']:.4f}, temperature {rule['temperature']:.2f}",
        flush=True,
    )
    rows, real_p, real_labels, real_accepted = [], [], [], []
    result = {"rule": rule}
    for name, s, what in (("letters", letters, chars), ("doodles", doodles, kinds)):
        out = answer(folder, s)
        refused = ~out["is_digit"]
        let_through = Counter(w for w, r in zip(what, refused, strict=True) if not r)
        rows.append((f"dev {name} refused", len(s.labels), refused.mean(), let_through))
        result[name] = out
    for s in real_digits(seed, held_out_fold(folder)) + ([mnist] if mnist else []):
        out = answer(folder, s)
        rows.append((f"{s.name} refused", len(s.labels), 1 - out["is_digit"].mean(), None))
        if s is not mnist:
            real_p.append(out["probabilities"])
            real_labels.append(s.labels)
            real_accepted.append(out["is_digit"])
        result[s.name] = out
    p, labels, accepted = map(np.concatenate, (real_p, real_labels, real_accepted))
    right = p.argmax(axis=1) == labels
    for name, value in rows_after(p, labels, accepted, right, rule["temperature"]):
        rows.append((name, int(accepted.sum()) if "accuracy" in name else len(labels), value, None))
    for name, n, value, through in rows:
        note = ""
        if through:
            note = "  let through: " + ", ".join(f"{w} ({c})" for w, c in through.most_common(8))
        figure = f"{value:8.2%}" if "error" not in name else f"{value:8.4f}"
        print(f"  {name:48s} {n:6d} {figure}{note}", flush=True)
    return result


def rows_after(p, labels, accepted, right, temperature: float) -> list[tuple[str, float]]:
    return [
        ("real dev digits: accuracy on the accepted", float(right[accepted].mean())),
        (
            "real dev digits: calibration error, untempered",
            calibration.calibration_error(untempered(p, temperature), labels),
        ),
        ("real dev digits: calibration error", calibration.calibration_error(p, labels)),
    ]


def picture(folder: Path, result: dict, letters: EvalSet, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threshold = result["rule"]["threshold"]
    groups = {name: out["digit_score"] for name, out in result.items() if "digit_score" in out}
    fig = plt.figure(figsize=(12, 5))
    ax = fig.add_subplot(1, 2, 1)
    bins = np.linspace(0, 1, 41)
    for name, score in groups.items():
        ax.hist(score, bins, histtype="step", density=True, label=name, linewidth=1.5)
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(yscale="log", xlabel="digit_score", ylabel="share (density, log)", title=f"{folder}")
    ax.legend(fontsize=7)
    let_through = np.nonzero(result["letters"]["is_digit"])[0][:24]
    shown = fig.add_subplot(1, 2, 2)
    strip = np.zeros((28 * 4, 28 * 6))
    for k, i in enumerate(let_through):
        r, c = divmod(k, 6)
        strip[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = letters.images[i]
    shown.imshow(strip, cmap="gray")
    shown.set_title(f"dev letters and symbols it accepted ({len(let_through)} shown)")
    shown.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[settings.MODEL_BASE_PATH])
    parser.add_argument(
        "--mnist",
        type=Path,
        default=settings.mnist_dir(),
        help="MNIST IDX folder, to score MNIST test (default: MNIST_DIR)",
    )
    parser.add_argument("--per-kind", type=int, default=100, help="dev doodles of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--picture", type=Path, default=RESULTS_DIR / "reject.png")
    args = parser.parse_args()
    folders = version_folders(args.paths)
    started = time.perf_counter()
    negatives = not_digits(args.seed, args.per_kind)
    mnist = load_mnist_test(args.mnist) if args.mnist else None
    print(
        f"{len(negatives[0].labels)} dev letters and symbols ({nondigits.DEV_WRITER}), "
        f"{len(negatives[2].labels)} dev doodles ({', '.join(nondigits.DEV_KINDS)}), drawn in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    for folder in folders:
        result = score_version(folder, negatives, mnist, args.seed)
    picture(folders[-1], result, negatives[0], args.picture)
    print(f"\npicture of {folders[-1]}: {args.picture}")


if __name__ == "__main__":
    main()
