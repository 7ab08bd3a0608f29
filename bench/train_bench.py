"""Benchmark: train on the MNIST IDX files in $MNIST_DIR and print accuracy and timings.

    nice -n 10 python bench/train_bench.py                          # `python -m train`'s recipe
    nice -n 10 python bench/train_bench.py --arch reference --continental-forms 0 \
        --lowres-forms 0 --uji-forms 0 --optdigits-forms 0 --epochs 15  # the reference recipe
    nice -n 10 python bench/train_bench.py --lr-schedule plateau    # LR halved on plateau
    nice -n 10 python bench/train_bench.py --plain-keras --epochs 2  # the reference's own loop

--plain-keras trains the reference network the way the reference script did (numpy arrays into
model.fit, validation_split, learning rate reduced on plateau) instead of through train.run: run
both for a couple of epochs back to back and the seconds per epoch compare the two on the
machine as it is now, whatever else it is doing.

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
from train.config import add_arguments, from_args  # noqa: E402
from train.run import run  # noqa: E402


def plain_keras(data: str, epochs: int, batch_size: int, seed: int) -> None:
    """The reference recipe as a plain Keras script: same network, Keras' own fit loop."""
    import keras

    from train.data import load, to_model_input
    from train.model import build

    keras.utils.set_random_seed(seed)
    dataset = load(data)
    x, x_test = to_model_input(dataset.x_train).numpy(), to_model_input(dataset.x_test).numpy()
    model = build("reference", seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plateau = keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=1e-5)
    started = time.perf_counter()
    model.fit(x, dataset.y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
              callbacks=[plateau], verbose=2)  # fmt: skip
    seconds = time.perf_counter() - started
    accuracy = model.evaluate(x_test, dataset.y_test, batch_size=512, verbose=0)[1]
    print(
        f"\nplain Keras reference script, {dataset.name}, batch {batch_size}, plateau LR\n"
        f"  test accuracy     {accuracy:.2%}\n"
        f"  seconds / epoch   {seconds / epochs:.1f}\n"
        f"  training seconds  {seconds:.0f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mnist = settings.mnist_dir()
    add_arguments(p, data=f"idx:{mnist}" if mnist else "tfds", model_base_path=None, verbose=2)
    p.add_argument("--plain-keras", action="store_true", help="the reference's own training loop")
    args = p.parse_args()
    if args.plain_keras:
        return plain_keras(args.data, args.epochs or 15, args.batch_size, args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        args.model_base_path = args.model_base_path or Path(tmp) / "mnist"
        config = from_args(p, args)
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
        f"batch {config.batch_size}, {config.lr_schedule} LR, {cores} CPU cores\n"
        f"  test accuracy     {metrics['test_accuracy']:.2%}{alone}\n"
        f"  epochs            {metrics['epochs']} of {metrics['config']['epochs'] or 'default'}\n"
        f"  seconds / epoch   {metrics['seconds_per_epoch']:.1f}\n"
        f"  training seconds  {metrics['training_seconds']:.0f}\n"
        f"  total seconds     {wall:.0f} (with data loading, evaluation, plots and export)"
    )


if __name__ == "__main__":
    main()
