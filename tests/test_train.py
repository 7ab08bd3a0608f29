"""Training: CLI, reproducibility, batch-norm momentum, evaluation, the sample model's quality."""

import json

import numpy as np
import pytest
import tensorflow as tf

from export.__main__ import main as export_main
from train.__main__ import main as train_main
from train.__main__ import parse_args
from train.config import TrainConfig
from train.model import ARCHES, build
from train.report import evaluate
from train.run import average, bn_momentum_for, recalibrate_batch_norm


def signature_outputs(version_path, images):
    fn = tf.saved_model.load(str(version_path)).signatures["serving_default"]
    return fn(image=tf.constant(images))["probabilities"].numpy()


def network_outputs(version_path, images):
    """The network's own probabilities (before each version's own temperature), all classes."""
    import keras

    model = keras.models.load_model(version_path / "assets.extra" / "model.keras")
    return model(images, training=False).numpy()


def test_cli_run_reproduces_the_tiny_fixture(tiny_model_base, tmp_path, capsys):
    """Same seed, same data, same flags: the CLI gives the fixture's exact weights."""
    argv = ["--data", "sample", "--limit", "280", "--batch-size", "256", "--epochs", "1"]
    argv += ["--members", "1", "--verbose", "0", "--model-base-path", str(tmp_path)]
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    assert f"exported {tmp_path / '1'}" in out and "metrics.json" in out
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(
        signature_outputs(tiny_model_base / "1", images), signature_outputs(tmp_path / "1", images)
    )
    metrics = json.loads((tmp_path / "1" / "assets.extra" / "metrics.json").read_text())
    assert metrics["config"]["seed"] == 42 and metrics["config"]["limit"] == 280
    assert len(metrics["history"]["learning_rate"]) == metrics["epochs"] == 1


def test_members_are_exported_as_one_model_averaging_them(tiny_model_base, tmp_path, capsys):
    """--members 2: the average of the one-model runs of seeds 42 (the tiny fixture) and 43."""
    argv = ["--data", "sample", "--limit", "280", "--batch-size", "256", "--epochs", "1"]
    argv += ["--verbose", "0", "--model-base-path"]
    assert train_main([*argv, str(tmp_path / "both"), "--members", "2"]) == 0
    assert "test accuracy of each model alone: " in capsys.readouterr().out
    assert train_main([*argv, str(tmp_path / "43"), "--seed", "43", "--members", "1"]) == 0
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    first = network_outputs(tiny_model_base / "1", images)
    second = network_outputs(tmp_path / "43" / "1", images)
    assert first.shape == (4, 11) and np.abs(second - first).max() > 1e-3  # two models
    averaged = network_outputs(tmp_path / "both" / "1", images)
    np.testing.assert_allclose(averaged, (first + second) / 2, rtol=1e-6, atol=1e-7)
    metrics = json.loads((tmp_path / "both" / "1" / "assets.extra" / "metrics.json").read_text())
    single = json.loads((tiny_model_base / "1" / "assets.extra" / "metrics.json").read_text())
    assert metrics["members"] == 2 and len(metrics["member_test_accuracies"]) == 2
    assert metrics["member_test_accuracies"][0] == single["test_accuracy"]
    assert metrics["parameters"] == 2 * 421_403
    # Two models of one epoch each: their curves one after the other.
    assert len(metrics["history"]["learning_rate"]) == metrics["epochs"] == 2
    assert export_main(["list", "--model-base-path", str(tmp_path / "both")]) == 0
    assert "canvas x2" in capsys.readouterr().out


def test_cli_refuses_existing_version_before_training(tiny_model_base, capsys):
    argv = ["--data", "sample", "--model-base-path", str(tiny_model_base), "--version", "1"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tiny_model_base / '1'} exists already; choose another"


def test_cli_data_error_is_one_line(tmp_path, capsys):
    argv = ["--data", f"idx:{tmp_path / 'missing'}", "--model-base-path", str(tmp_path / "m")]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing" in err and "\n" not in err
    assert not (tmp_path / "m").exists()


def test_parse_args_maps_every_flag(tmp_path):
    config = parse_args(
        ["--data", "idx:/d", "--epochs", "3", "--batch-size", "64", "--seed", "7", "--limit",
         "900", "--model-base-path", str(tmp_path), "--version", "4", "--val-fraction", "0.2",
         "--continental-forms", "60", "--lowres-forms", "90", "--members", "3"]
    )  # fmt: skip
    assert (config.data, config.epochs, config.batch_size, config.seed) == ("idx:/d", 3, 64, 7)
    assert (config.limit, config.version) == (900, 4)
    assert config.val_fraction == 0.2 and config.model_base_path == tmp_path
    assert (config.continental_forms, config.lowres_forms, config.members) == (60, 90, 3)
    assert parse_args([]).arch == "canvas"
    assert parse_args([]) == TrainConfig()  # the flags' defaults are the fields'


@pytest.mark.parametrize(
    "argv", [["--epochs", "0"], ["--limit", "1"], ["--version", "0"], ["--val-fraction", "1"],
             ["--arch", "nope"], ["--batch-size", "x"], ["--members", "0"], ["--uji-bend", "-1"]]
)  # fmt: skip
def test_parse_args_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bn_momentum_forgets_its_start():
    assert bn_momentum_for(5000) == bn_momentum_for(160) == 0.9
    assert bn_momentum_for(1) == 0.5
    for steps in (20, 57, 160, 900):
        assert bn_momentum_for(steps) ** steps < 1e-4


def test_recalibrated_batch_norm_normalises_clean_images_exactly():
    import keras

    model = build("reference", seed=0)
    images = np.random.default_rng(0).random((300, 28, 28, 1), dtype=np.float32)
    assert recalibrate_batch_norm(model, images, batch_size=128) == 5
    bns = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    for bn in (bns[0], bns[-1]):
        # Fresh gamma=1, beta=0: in inference mode each channel's output is standardised.
        out = keras.Model(model.inputs[0], bn.output)(images, training=False).numpy()
        out = out.reshape(-1, out.shape[-1])
        np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
        variance = bn.moving_variance.numpy()
        expected_std = np.sqrt(variance / (variance + bn.epsilon))  # 1 but for epsilon
        np.testing.assert_allclose(out.std(0), expected_std, rtol=1e-3)


def test_fused_batch_norm_is_keras_batch_norm():
    """Same outputs, gradients and moving statistics as Keras' layer, in training mode (where
    the fused kernel runs) and after it; fails if the unbiased variance is averaged."""
    import keras

    from train.batch_norm import FusedBatchNormalization

    x = tf.constant(np.random.default_rng(0).normal(2, 3, (8, 5, 5, 4)).astype(np.float32))
    layers = keras.layers.BatchNormalization(momentum=0.5), FusedBatchNormalization(momentum=0.5)
    results = []
    for layer in layers:
        layer.build(x.shape)
        layer.gamma.assign([1.5, 0.5, 2.0, 1.0])
        layer.beta.assign([0.1, -0.2, 0.3, 0.0])
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(x))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        stats = [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
        results.append([y.numpy(), *grads, *stats, layer(x, training=False).numpy()])
    for keras_value, fused_value in zip(*results, strict=True):
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=2e-5)


def test_reference_arch():
    assert "reference" in ARCHES
    model = build("reference", bn_momentum=0.9)
    assert model.count_params() == 437_546
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert {layer.momentum for layer in model.layers if hasattr(layer, "moving_mean")} == {0.9}
    with pytest.raises(ValueError, match="unknown arch"):
        build("resnet")


def test_average_is_the_mean_of_the_members_probabilities():
    members = [build("canvas", seed=seed) for seed in (1, 2)]
    model = average(members, "canvas")
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    outputs = [m(images, training=False).numpy() for m in members]
    assert not np.allclose(outputs[0], outputs[1])  # two different models
    averaged = model(images, training=False).numpy()
    np.testing.assert_allclose(averaged, (outputs[0] + outputs[1]) / 2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(averaged.sum(axis=1), 1, rtol=1e-6)
    assert model.input_shape == (None, 28, 28, 1) and model.count_params() == 2 * 421_146


def test_evaluate():
    labels = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    result = evaluate(np.eye(10)[predicted], labels)
    assert result["test_accuracy"] == pytest.approx(4 / 6)
    assert result["per_class_accuracy"]["0"] == 0.5 and result["per_class_accuracy"]["2"] == 0.6667
    confusion = np.array(result["confusion_matrix"])
    assert confusion[0, 1] == 1 and confusion[2, 0] == 1 and confusion.trace() == 4


def test_sample_model_is_usable(sample_model_base):
    metrics = json.loads((sample_model_base / "1" / "assets.extra" / "metrics.json").read_text())
    assert metrics["dataset"]["test"] == 1000
    assert metrics["test_accuracy"] >= 0.93
    assert min(metrics["per_class_accuracy"].values()) >= 0.8
