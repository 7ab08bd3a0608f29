"""One training run, from data to an exported version: `run(TrainConfig(...))`.

`python -m train` and the test fixtures both come through here, so what the tests check is what
users get. A run is a few named steps: the models' data, the models (new, or the models of a
version to fine-tune), one training loop for both, the evaluation, the export.
"""

import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from export.saved_model import export_version
from export.versions import VersionError, list_versions
from settings import NOT_A_DIGIT
from train import calibration, data, feedback_data, finetune, progress, report
from train.config import DEFAULT_STEPS, FINETUNE_EPOCHS, TrainConfig
from train.model import build

if TYPE_CHECKING:
    import keras

RECALIBRATION_IMAGES = 4096


@dataclass
class Split:
    """One model's training and validation images."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass
class Trained:
    """The models a run trained and what its report says about them."""

    arch: str
    start: finetune.Start | None  # the version fine-tuned, if any
    models: list["keras.Model"] = field(default_factory=list)
    histories: list[dict[str, list[float]]] = field(default_factory=list)
    seconds: float = 0.0
    # Of the last model; every model's test split and sizes are the same.
    dataset: data.Dataset | None = None
    split: Split | None = None
    bn_momentum: float | None = None
    recalibrated: int = 0  # batch-norm layers recalibrated in each model
    repeats: int = 0  # how many times the corrections were repeated in
    classes: int = data.NUM_CLASSES  # 11 with the not-a-digit class
    rule_figures: dict = field(default_factory=dict)  # on the digits the rule was chosen on


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
        source,
        config.continental_forms,
        config.lowres_forms,
        seed,
        uji=config.uji_forms,
        optdigits=config.optdigits_forms,
        uji_bend=config.uji_bend,
        uji_fold=config.uji_fold,
        nondigits=config.nondigit_forms,
    )


def model_data(
    config: TrainConfig, source: data.Dataset, corrections, seed: int, classes: int
) -> tuple[data.Dataset, Split, int]:
    """The data of the model of `seed`: its own drawn forms and validation split, so that models
    differ as much as separate runs do; the corrections mixed in (and how many times). A model
    without the not-a-digit class (a fine-tune of an older version) gets digits only."""
    dataset = with_config_forms(source, config, seed)
    x, y = dataset.x_train, dataset.y_train
    if classes <= NOT_A_DIGIT:
        x, y = x[y < NOT_A_DIGIT], y[y < NOT_A_DIGIT]
        if corrections is not None:
            corrections = feedback_data.digits_only(corrections)
    x, y, x_val, y_val = data.split_validation(x, y, config.val_fraction, seed, config.limit)
    repeats = 0
    if corrections is not None:
        x, y, repeats = feedback_data.mix(x, y, corrections, config.feedback_share, seed)
    return dataset, Split(x, y, x_val, y_val), repeats


def fit(
    model: "keras.Model",
    split: Split,
    config: TrainConfig,
    learning_rate: float,
    epochs: int,
    seed: int,
    callbacks: tuple = (),
) -> dict[str, list[float]]:
    """The training loop of new models and fine-tunes alike: Adam with a cosine decay from
    `learning_rate` to 2% of it over the run. Returns the history of its epochs."""
    import keras

    val_ds = data.make_dataset(split.x_val, split.y_val, 512) if len(split.y_val) else None
    # Keras logs the rate only when it is a plain number; the curves plot wants it always.
    log_rate = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logs.setdefault(
            "learning_rate", float(model.optimizer.learning_rate)
        )
    )
    steps = -(-len(split.y_train) // config.batch_size) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        data.make_dataset(split.x_train, split.y_train, config.batch_size, shuffle_seed=seed),
        validation_data=val_ds,
        epochs=epochs,
        callbacks=[log_rate, *callbacks],
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def print_plan(trained: Trained, count: int, epochs: int, steps_per_epoch: int, corrections):
    split = trained.split
    print(
        f"data {trained.dataset.name}: {len(split.y_train)} train, {len(split.y_val)} validation, "
        f"{len(trained.dataset.y_test)} test; arch {trained.arch}, "
        + (f"{count} models of " if count > 1 else "")
        + f"{epochs} epochs of {steps_per_epoch} steps, "
        f"batch norm momentum {trained.bn_momentum:.3f}",
        flush=True,
    )
    if corrections is not None:
        print(
            f"feedback {corrections.where}: {len(corrections.y_train)} digits to train "
            f"on, each {trained.repeats}x; {len(corrections.y_aside)} held aside"
            + (f"; fine-tuning version {trained.start.version}" if trained.start else ""),
            flush=True,
        )


def train_models(
    config: TrainConfig, source: data.Dataset, start, start_models, corrections
) -> Trained:
    """Each model in turn, the one-model run of its seed bit for bit: new ones, or the models of
    the version `start` fine-tuned, however many it averages."""
    import keras

    trained = Trained(start.metrics.get("arch", "-") if start else config.arch, start)
    count = len(start_models) if start_models else config.members
    if start_models:
        trained.classes = int(start_models[0].output_shape[-1])
    elif config.nondigit_forms > 0:
        trained.classes = data.NUM_CLASSES + 1
    for member in range(count):
        seed = config.seed + member
        if member:
            keras.utils.set_random_seed(seed)
            print(f"model {member + 1} of {count}: seed {seed}", flush=True)
        trained.dataset, split, trained.repeats = model_data(
            config, source, corrections, seed, trained.classes
        )
        trained.split = split
        steps_per_epoch = -(-len(split.y_train) // config.batch_size)
        epochs = config.epochs or (
            FINETUNE_EPOCHS if start else max(1, round(DEFAULT_STEPS / steps_per_epoch))
        )
        steps = steps_per_epoch * epochs
        trained.bn_momentum = bn_momentum_for(steps)
        if not member:
            print_plan(trained, count, epochs, steps_per_epoch, corrections)
        started = time.perf_counter()
        if start_models:
            model = start_models[member]
            learning_rate = config.learning_rate * finetune.LEARNING_RATE_FACTOR
        else:
            model = build(config.arch, trained.bn_momentum, seed, trained.classes)
            learning_rate = config.learning_rate
        shown = ()
        if config.progress_file is not None:
            shown = (progress.callback(config.progress_file, member, count, steps),)
        trained.histories.append(fit(model, split, config, learning_rate, epochs, seed, shown))
        trained.seconds += time.perf_counter() - started
        # 4,096 images pin the statistics down to well under 1% and take seconds.
        images = data.to_model_input(split.x_train[:RECALIBRATION_IMAGES]).numpy()
        trained.recalibrated = recalibrate_batch_norm(model, images)
        trained.models.append(model)
    return trained


@functools.cache  # the same for every run with this fold
def real_digits(uji_fold: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The real digits a version's rule is chosen on (train/calibration.py), as the model's
    graph reads a drawing: scikit-learn's half, and the UJI fold kept out, if any."""
    import cv2
    import tensorflow as tf

    from export.image_preprocessing import images_to_mnist
    from train import uji
    from train.canvas_digits import sklearn_digits, uji_canvas

    samples = [s for i, s in enumerate(sklearn_digits(1)) if calibration.sklearn_part(i)]
    if uji_fold is not None:
        kept_out = uji.split_writers(uji.read(), uji_fold)[1]
        rng = np.random.default_rng(1)  # other drawings than the dev set's
        samples += [(uji_canvas(d, rng), d.digit) for d in kept_out]
    pngs = [cv2.imencode(".png", canvas)[1].tobytes() for canvas, _ in samples]
    to_mnist = tf.function(images_to_mnist)
    images = [to_mnist(tf.constant(pngs[i : i + 64]))[0] for i in range(0, len(pngs), 64)]
    return np.concatenate(images), np.array([label for _, label in samples], np.int64)


def choose_rule(config: TrainConfig, model, trained: Trained) -> calibration.Rule:
    """The version's not-a-digit threshold and temperature (train/calibration.py)."""
    x_real, y_real = real_digits(config.uji_fold)
    split = trained.split
    val = data.to_model_input(split.x_val[split.y_val < NOT_A_DIGIT]).numpy()
    real_p = model.predict(x_real, batch_size=512, verbose=0)
    rule = calibration.choose(real_p, y_real, model.predict(val, batch_size=512, verbose=0))
    trained.rule_figures = calibration.figures(real_p, y_real, rule)
    return rule


def evaluate(
    config: TrainConfig,
    trained: Trained,
    model,
    x_test: np.ndarray,
    corrections,
    rule: calibration.Rule,
) -> tuple[dict, np.ndarray]:
    """metrics.json's figures of the model on the test split, and its digits' probabilities
    there (as the version answers)."""
    dataset, split = trained.dataset, trained.split
    network = model.predict(x_test, batch_size=512, verbose=0)
    probabilities = calibration.digit_probabilities(network, rule.temperature)
    results = report.evaluate(probabilities, dataset.y_test)
    member_accuracies = [results["test_accuracy"]]
    if len(trained.models) > 1:
        each = [m.predict(x_test, batch_size=512, verbose=0) for m in trained.models]
        member_accuracies = [
            report.evaluate(calibration.digit_probabilities(p), dataset.y_test)["test_accuracy"]
            for p in each
        ]
    # One model after the other, as they were trained: the curves start again at each member.
    history = {k: [v for h in trained.histories for v in h[k]] for k in trained.histories[0]}
    epochs_run = len(history.get("loss", []))
    metrics = {
        **results,
        "arch": trained.arch,
        "members": len(trained.models),
        "member_test_accuracies": member_accuracies,
        "parameters": int(model.count_params()),
        "dataset": {
            "source": dataset.name,
            "train": len(split.y_train),
            "validation": len(split.y_val),
            "test": len(dataset.y_test),
        },
        "epochs": epochs_run,
        "training_seconds": round(trained.seconds, 1),
        "seconds_per_epoch": round(trained.seconds / max(epochs_run, 1), 1),
        # A fine-tune keeps the version's own batch-norm layers.
        "bn_momentum": None if trained.start else trained.bn_momentum,
        "bn_recalibrated_layers": trained.recalibrated,  # in each model
        "config": config.as_dict(),
        "not_a_digit": {
            **asdict(rule),
            "classes": trained.classes,
            "chosen_on": trained.rule_figures,
            "test": calibration.figures(network, dataset.y_test, rule),
        },
        "history": history,
    }
    if trained.start is not None:
        metrics["from_version"] = trained.start.version
    if corrections is not None:
        metrics["feedback"] = feedback_figures(config, trained, model, corrections, results)
    return metrics, probabilities


def feedback_figures(config: TrainConfig, trained: Trained, model, corrections, results) -> dict:
    """The corrections before and after: compared with the version fine-tuned, else with the
    newest one (what is served now)."""
    base_path, before = Path(config.model_base_path), trained.start
    if before is None and list_versions(base_path):
        before = finetune.resolve(base_path, "latest")
    return feedback_data.figures(
        corrections,
        before,
        model,
        trained.repeats,
        config.feedback_share,
        trained.dataset,
        results["test_accuracy"],
    )


def export(config: TrainConfig, model, metrics: dict, x_test, y_test, probabilities, rule) -> Path:
    """The model as the next version, with its metrics and plots; its folder."""

    def write_plots(assets: Path) -> None:
        report.plot_confusion(metrics["confusion_matrix"], assets / report.CONFUSION_PNG)
        report.plot_misclassified(x_test, y_test, probabilities, assets / report.MISCLASSIFIED_PNG)
        report.plot_history(metrics["history"], assets / report.CURVES_PNG)

    return export_version(
        model,
        Path(config.model_base_path),
        metrics,
        version=config.version,
        warmup_images=x_test[:8],
        extras=write_plots,
        threshold=rule.threshold,
        temperature=rule.temperature,
    )


def print_result(path: Path, metrics: dict) -> None:
    assets, test = path / "assets.extra", metrics["dataset"]["test"]
    if metrics["members"] > 1:
        alone = ", ".join(f"{a:.2%}" for a in metrics["member_test_accuracies"])
        print(f"test accuracy of each model alone: {alone}", flush=True)
    print(
        f"test accuracy {metrics['test_accuracy']:.2%} on {test} images; "
        f"trained {metrics['epochs']} epochs in {metrics['training_seconds']:.0f} s\n"
        f"exported {path}\n"
        f"  metrics   {assets / 'metrics.json'}\n"
        f"  confusion {assets / report.CONFUSION_PNG}\n"
        f"  mistakes  {assets / report.MISCLASSIFIED_PNG}\n"
        f"  curves    {assets / report.CURVES_PNG}",
        flush=True,
    )
    print(not_a_digit_summary(metrics["not_a_digit"]), flush=True)
    if "feedback" in metrics:
        print(feedback_data.summary(metrics["feedback"]), flush=True)


def not_a_digit_summary(figures: dict) -> str:
    chosen, test = figures["chosen_on"], figures["test"]
    if figures["classes"] <= NOT_A_DIGIT:
        return "not a digit: this model has no such class; every image counts as a digit"
    return (
        f"not a digit: digit_score below {figures['threshold']:.4f} (temperature "
        f"{figures['temperature']:.2f}); refuses {chosen['rejected']:.2%} of the "
        f"{chosen['digits']} real digits it was chosen on (calibration error "
        f"{chosen['ece_untempered']:.4f} -> {chosen['ece']:.4f}) and {test['rejected']:.2%} of "
        f"the test digits"
    )


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
    start_models = finetune.load_members(start) if start else None
    corrections = feedback_data.load(config.feedback) if config.feedback else None
    source = data.load(config.data)

    trained = train_models(config, source, start, start_models, corrections)
    if config.progress_file is not None:
        progress.write(config.progress_file, state="exporting", fraction=1.0)
    models = trained.models
    model = models[0] if len(models) == 1 else average(models, trained.arch)
    x_test, y_test = data.to_model_input(trained.dataset.x_test).numpy(), trained.dataset.y_test
    rule = choose_rule(config, model, trained)
    metrics, probabilities = evaluate(config, trained, model, x_test, corrections, rule)
    path = export(config, model, metrics, x_test, y_test, probabilities, rule)
    if config.progress_file is not None:
        progress.write(
            config.progress_file,
            state="exported",
            fraction=1.0,
            version=int(path.name),
            test_accuracy=metrics["test_accuracy"],
        )
    print_result(path, metrics)
    return path
