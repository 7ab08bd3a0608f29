"""Benchmark: train the reference CNN on ../shared/mnist and print accuracy and timings.

    nice -n 10 python bench/train_bench.py                          # `python -m train`'s recipe
    nice -n 10 python bench/train_bench.py --lr-schedule plateau    # LR halved on plateau

The reference figure to beat (a plain Keras script, batch 128, Adam, 15 epochs, learning rate
reduced on plateau, 2 CPU cores): 99.21% test accuracy in 585 s. Training goes through the
product's own code path (train.run), so the model measured is the model exported; it is written to
a temporary folder unless --model-base-path is given.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import settings  # noqa: E402
from train.run import TrainConfig, run  # noqa: E402

SHARED_MNIST = settings.ROOT.parent / "shared" / "mnist"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=f"idx:{SHARED_MNIST}")
    p.add_argument("--arch", default="reference")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr-schedule", default="cosine", choices=("cosine", "plateau"))
    p.add_argument("--patience", type=int, default=4, help="early-stopping patience (epochs)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model-base-path", type=Path, default=None)
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            data=args.data,
            arch=args.arch,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr_schedule=args.lr_schedule,
            early_stopping_patience=args.patience,
            seed=args.seed,
            model_base_path=args.model_base_path or Path(tmp) / "mnist",
            verbose=args.verbose,
        )
        started = time.perf_counter()
        version = run(config)
        wall = time.perf_counter() - started
        metrics = json.loads((version / "assets.extra" / "metrics.json").read_text())

    cores = len(os.sched_getaffinity(0))
    print(
        f"\n{args.arch}, {metrics['dataset']['source']}: {metrics['dataset']['train']} train / "
        f"{metrics['dataset']['validation']} validation / {metrics['dataset']['test']} test, "
        f"batch {args.batch_size}, {args.lr_schedule} LR, {cores} CPU cores\n"
        f"  test accuracy     {metrics['test_accuracy']:.2%}\n"
        f"  epochs            {metrics['epochs']} of {args.epochs}\n"
        f"  seconds / epoch   {metrics['seconds_per_epoch']:.1f}\n"
        f"  training seconds  {metrics['training_seconds']:.0f}\n"
        f"  total seconds     {wall:.0f} (with data loading, evaluation, plots and export)"
    )


if __name__ == "__main__":
    main()
