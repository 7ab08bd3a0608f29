"""Benchmark: train on ../shared/mnist and print accuracy and timings.

    nice -n 10 python bench/train_bench.py                          # `python -m train`'s recipe
    nice -n 10 python bench/train_bench.py --arch reference --continental-forms 0 \
        --lowres-forms 0 --epochs 15                                # the reference recipe
    nice -n 10 python bench/train_bench.py --lr-schedule plateau    # LR halved on plateau
    nice -n 10 python bench/train_bench.py --plain-keras --epochs 2  # the reference's own loop

--plain-keras trains the reference network the way the reference script did (numpy arrays into
model.fit, validation_split, learning rate reduced on plateau) instead of through train.run: run
both for a couple of epochs back to back and the seconds per epoch compare the two on the
machine as it is now, whatever else it is doing.

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
from train.model import ARCHES  # noqa: E402
from train.run import TrainConfig, run  # noqa: E402

SHARED_MNIST = settings.ROOT.parent / "shared" / "mnist"


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
    p.add_argument("--data", default=f"idx:{SHARED_MNIST}")
    p.add_argument("--arch", default=TrainConfig.arch, choices=sorted(ARCHES))
    p.add_argument("--epochs", type=int, default=None, help="default: as `python -m train`")
    p.add_argument("--members", type=int, default=TrainConfig.members, help="models averaged")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr-schedule", default=TrainConfig.lr_schedule, choices=("cosine", "plateau"))
    p.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.early_stopping_patience,
        help="early-stopping patience in epochs (--lr-schedule plateau only)",
    )
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--continental-forms", type=int, default=TrainConfig.continental_forms)
    p.add_argument("--lowres-forms", type=int, default=TrainConfig.lowres_forms)
    p.add_argument("--model-base-path", type=Path, default=None)
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--plain-keras", action="store_true", help="the reference's own training loop")
    args = p.parse_args()
    if args.plain_keras:
        return plain_keras(args.data, args.epochs or 15, args.batch_size, args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            data=args.data,
            arch=args.arch,
            epochs=args.epochs,
            members=args.members,
            batch_size=args.batch_size,
            lr_schedule=args.lr_schedule,
            early_stopping_patience=args.patience,
            seed=args.seed,
            continental_forms=args.continental_forms,
            lowres_forms=args.lowres_forms,
            model_base_path=args.model_base_path or Path(tmp) / "mnist",
            verbose=args.verbose,
        )
        started = time.perf_counter()
        version = run(config)
        wall = time.perf_counter() - started
        metrics = json.loads((version / "assets.extra" / "metrics.json").read_text())

    cores = len(os.sched_getaffinity(0))
    each = metrics["member_test_accuracies"]
    alone = f" (each model alone: {', '.join(f'{a:.2%}' for a in each)})" if len(each) > 1 else ""
    print(
        f"\n{args.arch}, {metrics['dataset']['source']}: {metrics['dataset']['train']} train / "
        f"{metrics['dataset']['validation']} validation / {metrics['dataset']['test']} test, "
        f"batch {args.batch_size}, {args.lr_schedule} LR, {cores} CPU cores\n"
        f"  test accuracy     {metrics['test_accuracy']:.2%}{alone}\n"
        f"  epochs            {metrics['epochs']} of {metrics['config']['epochs'] or 'default'}\n"
        f"  seconds / epoch   {metrics['seconds_per_epoch']:.1f}\n"
        f"  training seconds  {metrics['training_seconds']:.0f}\n"
        f"  total seconds     {wall:.0f} (with data loading, evaluation, plots and export)"
    )


if __name__ == "__main__":
    main()
