"""Benchmark: train on the MNIST IDX files in $MNIST_DIR and print accuracy and timings.

    nice -n 10 python bench/train_bench.py                          # `python -m train`'s recipe
    nice -n 10 python bench/train_bench.py --arch reference --continental-forms 0 \
        --lowres-forms 0 --uji-forms 0 --optdigits-forms 0 --epochs 15  # the reference recipe

Every `python -m train` flag is accepted (train/config.py declares them). Training goes through
the product's own code path (train.run), so the model measured is the model exported; it is
written to a temporary folder unless --model-base-path is given.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import settings  # noqa: E402
from train.config import TrainConfig, add_arguments  # noqa: E402
from train.run import run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mnist = settings.mnist_dir()
    add_arguments(p, data=f"idx:{mnist}" if mnist else "tfds", model_base_path=None, verbose=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        args.model_base_path = args.model_base_path or Path(tmp) / "mnist"
        config = TrainConfig(**vars(args))
        started = time.perf_counter()
        version = run(config)
        wall = time.perf_counter() - started
        metrics = json.loads((version / "assets.extra" / "metrics.json").read_text())

    cores = len(os.sched_getaffinity(0))
    each = metrics["member_test_accuracies"]
    alone = f" (each model alone: {', '.join(f'{a:.2%}' for a in each)})" if len(each) > 1 else ""
    print(
        f"\n{config.arch}, {metrics['dataset']['source']}: {metrics['dataset']['train']} train / "
        f"{metrics['dataset']['validation']} validation / {metrics['dataset']['test']} test, "
        f"batch {config.batch_size}, {cores} CPU cores\n"
        f"  test accuracy     {metrics['test_accuracy']:.2%}{alone}\n"
        f"  epochs            {metrics['epochs']} of {metrics['config']['epochs'] or 'default'}\n"
        f"  seconds / epoch   {metrics['seconds_per_epoch']:.1f}\n"
        f"  training seconds  {metrics['training_seconds']:.0f}\n"
        f"  total seconds     {wall:.0f} (with data loading, evaluation, plots and export)"
    )


if __name__ == "__main__":
    main()
