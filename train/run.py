"""One training run, from data to an exported version: `run(TrainConfig(...))`.

`python -m train` and the test fixtures both come through here, so what the tests check is what
users get.
"""

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from export.saved_model import export_version
from export.versions import VersionError, list_versions
from train import data, feedback_data, finetune, report
from train.config import DEFAULT_STEPS, FINETUNE_EPOCHS, TrainConfig
from train.model import build

if TYPE_CHECKING:
    import keras

RECALIBRATION_IMAGES = 4096


def bn_momentum_for(total_steps: int) -> float:
    """Batch-norm momentum: 0.9 (PyTorch's default), less for runs too short to forget the start.

    The moving statistics that inference uses trail the weights, which change fast early on.
    With Keras' default 0.99, runs of a few hundred steps scored at chance in inference mode while
    their training accuracy was already high (bench/RESULTS.md). 0.9 averages over the last
    ~10 steps; 1 - 10/steps caps what is left of the initial 0/1 statistics at e**-10.
    """
    return float(np.clip(1.0 - 10.0 / max(total_steps, 1), 0.5, 0.9))


def recalibrate_batch_norm(model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set every batch-norm layer's moving statistics to the exact statistics of `images`.

    "Precise BN": the moving averages that inference uses come from augmented, dropped-out,
    still-changing activations of the last few batches; the exact mean and variance of each
    layer's input over clean training images, computed layer by layer in inference mode, are
    what the exported model will actually see. Returns how many layers were recalibrated
    (those directly inside the functional model).
    """
    import keras

    layers = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    for layer in layers:  # in order: each probe runs through the already recalibrated ones
        probe = keras.Model(model.inputs[0], layer.input)  # one input: called on one array
        total = total_sq = count = 0
        for start in range(0, len(images), batch_size):
            a = np.asarray(probe(images[start : start + batch_size], training=False), np.float64)
            a = a.reshape(-1, a.shape[-1])
            total, total_sq, count = total + a.sum(0), total_sq + (a**2).sum(0), count + len(a)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(total_sq / count - mean**2, 0).astype(np.float32))
    return len(layers)


def train_member(
    config: TrainConfig,
    seed: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    steps_per_epoch: int,
    bn_momentum: float,
) -> tuple["keras.Model", dict[str, list[float]]]:
    """One model trained on the training split: (model, the history of its epochs)."""
    import keras

    model = build(config.arch, bn_momentum=bn_momentum, seed=seed)
    val_ds = data.make_dataset(x_val, y_val, 512) if len(y_val) else None
    callbacks = [
        # Keras logs the rate only when it is a plain number; the curves plot wants it always.
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: logs.setdefault(
                "learning_rate", float(model.optimizer.learning_rate)
            )
        ),
    ]
    learning_rate = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=steps_per_epoch * epochs, alpha=0.02
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    train_ds = data.make_dataset(x_train, y_train, config.batch_size, shuffle_seed=seed)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        callbacks=callbacks,
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}


def average(members: list["keras.Model"], arch: str) -> "keras.Model":
    """One model whose output is the mean of the members' probabilities (still a softmax)."""
    import keras

    inputs = keras.Input(members[0].input_shape[1:], name="image")
    # The same layers under names of their own: a model's parts need unique names.
    named = [keras.Model(m.input, m.output, name=f"{arch}_{i}") for i, m in enumerate(members, 1)]
    outputs = keras.layers.Average(name="probabilities")([m(inputs) for m in named])
    return keras.Model(inputs, outputs, name=f"{arch}_x{len(members)}")


def with_config_forms(source: data.Dataset, config: TrainConfig, seed: int) -> data.Dataset:
    """The source with the forms that `config` asks for, drawn with `seed`."""
    return data.with_forms(
        source, config.continental_forms, config.lowres_forms, seed, uji=config.uji_forms,
        optdigits=config.optdigits_forms, uji_bend=config.uji_bend,
    )  # fmt: skip


def run(config: TrainConfig) -> Path:
    """Train, evaluate on the test split, export a new version; return the version's folder."""
    import keras
    import tensorflow as tf

    base_path = Path(config.model_base_path)
    if config.version is not None and (base_path / str(config.version)).exists():
        # Say so before training, not after.
        raise VersionError(f"{base_path / str(config.version)} exists already; choose another")
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same weights (CPU)

    # A version to fine-tune, and the corrections, are checked before the data are loaded.
    start = finetune.resolve(base_path, config.from_version) if config.from_version else None
    start_members = finetune.load_members(start) if start else None
    # A fine-tune trains the version's own models, however many it averages.
    count = len(start_members) if start_members else config.members
    arch = start.metrics.get("arch", "-") if start else config.arch
    corrections = feedback_data.load(config.feedback) if config.feedback else None
    source = data.load(config.data)
    members, histories, train_seconds, repeats = [], [], 0.0, 0
    for member in range(count):
        # Each model is the one-model run of its seed, bit for bit: its own drawn forms and
        # validation split too, so that models differ as much as separate runs do.
        seed = config.seed + member
        if member:
            keras.utils.set_random_seed(seed)
            print(f"model {member + 1} of {count}: seed {seed}", flush=True)
        dataset = with_config_forms(source, config, seed)
        x_train, y_train, x_val, y_val = data.split_validation(
            dataset.x_train, dataset.y_train, config.val_fraction, seed, config.limit
        )
        if corrections is not None:
            x_train, y_train, repeats = feedback_data.mix(
                x_train, y_train, corrections, config.feedback_share, seed
            )
        steps_per_epoch = -(-len(y_train) // config.batch_size)
        epochs = config.epochs or (
            FINETUNE_EPOCHS if start else max(1, round(DEFAULT_STEPS / steps_per_epoch))
        )
        bn_momentum = bn_momentum_for(steps_per_epoch * epochs)
        if not member:
            print(
                f"data {dataset.name}: {len(y_train)} train, {len(y_val)} validation, "
                f"{len(dataset.y_test)} test; arch {arch}, "
                + (f"{count} models of " if count > 1 else "")
                + f"{epochs} epochs of {steps_per_epoch} steps, "
                f"batch norm momentum {bn_momentum:.3f}",
                flush=True,
            )
            if corrections is not None:
                print(
                    f"feedback {corrections.where}: {len(corrections.y_train)} digits to train "
                    f"on, each {repeats}x; {len(corrections.y_aside)} held aside"
                    + (f"; fine-tuning version {start.version}" if start else ""),
                    flush=True,
                )
        started = time.perf_counter()
        if start_members is not None:
            model, history = finetune.finetune(
                start_members[member], config.learning_rate, config.batch_size, seed,
                x_train, y_train, x_val, y_val, epochs, config.verbose,
            )  # fmt: skip
        else:
            model, history = train_member(
                config, seed, x_train, y_train, x_val, y_val, epochs, steps_per_epoch, bn_momentum
            )
        train_seconds += time.perf_counter() - started
        # 4,096 images pin the statistics down to well under 1% and take seconds.
        recalibrated = recalibrate_batch_norm(
            model, data.to_model_input(x_train[:RECALIBRATION_IMAGES]).numpy()
        )
        members.append(model)
        histories.append(history)
    model = members[0] if len(members) == 1 else average(members, arch)

    x_test = data.to_model_input(dataset.x_test).numpy()
    probabilities = model.predict(x_test, batch_size=512, verbose=0)
    results = report.evaluate(probabilities, dataset.y_test)
    # One model after the other, as they were trained: the curves start again at each member.
    history_lists = {k: [v for h in histories for v in h[k]] for k in histories[0]}
    epochs_run = len(history_lists.get("loss", []))
    member_results = [results]
    if len(members) > 1:
        member_results = [
            report.evaluate(m.predict(x_test, batch_size=512, verbose=0), dataset.y_test)
            for m in members
        ]
    member_accuracies = [r["test_accuracy"] for r in member_results]

    metrics = {
        **results,
        "arch": arch,
        "members": count,
        "member_test_accuracies": member_accuracies,
        "parameters": int(model.count_params()),
        "dataset": {
            "source": dataset.name,
            "train": len(y_train),
            "validation": len(y_val),
            "test": len(dataset.y_test),
        },
        "epochs": epochs_run,
        "training_seconds": round(train_seconds, 1),
        "seconds_per_epoch": round(train_seconds / max(epochs_run, 1), 1),
        "bn_momentum": bn_momentum,
        "bn_recalibrated_layers": recalibrated,  # in each model
        "config": config.as_dict(),
        "history": history_lists,
    }
    if start is not None:
        metrics["from_version"] = start.version
        metrics["bn_momentum"] = None  # the version's own: a fine-tune keeps its layers
    if corrections is not None:
        # Compared with the version fine-tuned, else with the newest one (what is served now).
        before = start
        if before is None and list_versions(base_path):
            before = finetune.resolve(base_path, "latest")
        mnist_before = None
        if before is not None:
            mnist_before = finetune.version_accuracy(before.path, dataset.x_test, dataset.y_test)
        metrics["feedback"] = feedback_data.figures(
            corrections, before, model, repeats, config.feedback_share, mnist_before,
            results["test_accuracy"],
        )  # fmt: skip

    def write_plots(assets: Path) -> None:
        report.plot_confusion(np.array(results["confusion_matrix"]), assets / report.CONFUSION_PNG)
        report.plot_misclassified(
            x_test, dataset.y_test, probabilities, assets / report.MISCLASSIFIED_PNG
        )
        report.plot_history(history_lists, assets / report.CURVES_PNG)

    path = export_version(
        model,
        base_path,
        metrics,
        version=config.version,
        warmup_images=x_test[:8],
        extras=write_plots,
    )
    assets = path / "assets.extra"
    if len(members) > 1:
        alone = ", ".join(f"{a:.2%}" for a in member_accuracies)
        print(f"test accuracy of each model alone: {alone}", flush=True)
    print(
        f"test accuracy {results['test_accuracy']:.2%} on {len(dataset.y_test)} images; "
        f"trained {epochs_run} epochs in {train_seconds:.0f} s\n"
        f"exported {path}\n"
        f"  metrics   {assets / 'metrics.json'}\n"
        f"  confusion {assets / report.CONFUSION_PNG}\n"
        f"  mistakes  {assets / report.MISCLASSIFIED_PNG}\n"
        f"  curves    {assets / report.CURVES_PNG}",
        flush=True,
    )
    if corrections is not None:
        print(feedback_data.summary(metrics["feedback"]), flush=True)
    return path
