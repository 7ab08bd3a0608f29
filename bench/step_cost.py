"""Benchmark: the CPU a training step costs, and the CPU the added training forms cost, per recipe.

    nice -n 10 python -m bench.step_cost "" "--uji-forms 2400 --members 1"
    nice -n 10 python -m bench.step_cost "" "--arch reference" --rounds 3 --steps 20

Each argument is one recipe, written as `python -m train` flags (train/config.py; "" is the
default). On a shared machine wall time follows the machine's speed more than the recipe, so this
measures CPU time (`time.process_time`, all threads of this process): per training step of the
recipe's model, in rounds that alternate between the recipes so that the machine's swings hit
them alike; and once, the making of the recipe's drawn forms (`train.data.with_forms`). A full
run costs about 3,000 steps x the step + the forms, in CPU seconds (on 2 cores, up to twice
the wall time).
"""

import argparse
import os
import shlex
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import numpy as np  # noqa: E402

import settings  # noqa: E402
from train.config import DEFAULT_STEPS, TrainConfig, add_arguments  # noqa: E402


def parse_recipe(flags: str, data: str) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="recipe", add_help=False)
    add_arguments(parser, data=data)
    return TrainConfig(**vars(parser.parse_args(shlex.split(flags))))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", nargs="+", help='python -m train flags, quoted; "" the default')
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="timed steps per recipe and round")
    args = p.parse_args(argv)
    mnist = settings.mnist_dir()
    configs = [parse_recipe(r, f"idx:{mnist}" if mnist else "sample") for r in args.recipes]

    import keras
    import tensorflow as tf

    from train import data
    from train.model import build
    from train.run import with_config_forms

    source = data.load(configs[0].data)
    models, batches, forms = [], [], []
    for config in configs:
        started = time.process_time()
        dataset = with_config_forms(source, config, config.seed)
        forms.append(time.process_time() - started)
        keras.utils.set_random_seed(config.seed)
        model = build(config.arch, bn_momentum=0.9, seed=config.seed)
        optimizer = keras.optimizers.Adam(config.learning_rate)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        pick = np.random.default_rng(0).choice(len(dataset.y_train), config.batch_size)
        batch = (data.to_model_input(dataset.x_train[pick]), tf.constant(dataset.y_train[pick]))
        for _ in range(3):  # tracing and warm-up
            model.train_on_batch(*batch)
        models.append(model)
        batches.append(batch)

    per_step = [[] for _ in configs]
    for _ in range(args.rounds):
        for i, (model, batch) in enumerate(zip(models, batches, strict=True)):
            started = time.process_time()
            for _ in range(args.steps):
                model.train_on_batch(*batch)
            per_step[i].append((time.process_time() - started) / args.steps)

    cores = len(os.sched_getaffinity(0))
    print(f"\nCPU seconds ({cores} cores), {args.rounds} rounds of {args.steps} steps, interleaved")
    print(f"{'recipe':<48} {'per step (each round)':>28} {'forms':>7} {'run CPU':>8}")
    for recipe, steps, form in zip(args.recipes, per_step, forms, strict=True):
        rounds = " ".join(f"{s * 1000:.0f}" for s in steps)
        run = DEFAULT_STEPS * float(np.median(steps)) + form
        print(f"{recipe or '(default)':<48} {rounds + ' ms':>28} {form:>6.1f}s {run:>7.0f}s")


if __name__ == "__main__":
    main()
