"""The export contract: signature, determinism, warmup, metadata, `python -m export list`."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

import settings
from export.__main__ import main as export_main
from export.saved_model import export_version
from export.versions import list_versions
from train.config import TrainConfig
from train.model import build


@pytest.fixture(scope="module")
def tiny_version(tiny_model_base):
    return tiny_model_base / "1"


@pytest.fixture(scope="module")
def serving_fn(tiny_version):
    return tf.saved_model.load(str(tiny_version)).signatures["serving_default"]


def digits_batch(n: int = 5) -> np.ndarray:
    return np.random.default_rng(1).random((n, 28, 28, 1), dtype=np.float32)


def test_tiny_fixture_is_version_1_only(tiny_model_base):
    assert list_versions(tiny_model_base) == [1]
    assert not [p for p in tiny_model_base.iterdir() if p.name.startswith(".")]


def test_signature_names_dtypes_shapes(serving_fn):
    _, inputs = serving_fn.structured_input_signature
    assert list(inputs) == ["image"]
    assert inputs["image"].dtype == tf.float32
    assert inputs["image"].shape.as_list() == [None, 28, 28, 1]
    outputs = serving_fn.structured_outputs
    assert set(outputs) == {"probabilities", "digit", "is_digit", "digit_score"}
    assert outputs["is_digit"].dtype == tf.bool and outputs["is_digit"].shape.as_list() == [None]
    assert outputs["digit_score"].dtype == tf.float32
    assert outputs["digit_score"].shape.as_list() == [None]
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["probabilities"].shape.as_list() == [None, 10]
    assert outputs["digit"].dtype == tf.int64
    assert outputs["digit"].shape.as_list() == [None]


def test_outputs_are_softmax_and_argmax(serving_fn):
    out = serving_fn(image=tf.constant(digits_batch(7)))
    probabilities, digit = out["probabilities"].numpy(), out["digit"].numpy()
    assert probabilities.shape == (7, 10) and digit.shape == (7,)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(digit, probabilities.argmax(axis=1))


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.01])
def test_is_digit_and_the_tempered_probabilities_are_train_calibrations_in_the_graph(
    tmp_path, threshold
):
    from train import calibration

    model = build("canvas", seed=4, classes=11)
    x = digits_batch(64)
    rule = calibration.Rule(threshold, 1.7)
    path = export_version(model, tmp_path, {}, threshold=threshold, temperature=1.7)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](image=tf.constant(x))
    probabilities, score, is_digit = calibration.answer(model.predict(x, verbose=0), rule)
    np.testing.assert_allclose(out["probabilities"].numpy(), probabilities, atol=1e-5)
    np.testing.assert_allclose(out["digit_score"].numpy(), score, atol=1e-6)
    np.testing.assert_array_equal(out["is_digit"].numpy(), is_digit)
    # 0 accepts every image and above 1 refuses every one; in between, an untrained model's
    # scores fall on both sides or on one: the answer is the threshold's, not a constant.
    if threshold == 0.0:
        assert is_digit.all()
    if threshold > 1:
        assert not is_digit.any()


def test_a_ten_class_model_calls_every_image_a_digit(tmp_path):
    model = build("reference", seed=3)
    path = export_version(model, tmp_path, {}, threshold=0.5)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](image=digits_batch(4))
    assert out["is_digit"].numpy().all() and (out["digit_score"].numpy() == 1).all()


def test_single_image_batch(serving_fn):
    out = serving_fn(image=tf.zeros([1, 28, 28, 1]))
    assert out["probabilities"].shape == (1, 10) and out["digit"].shape == (1,)


def test_export_is_deterministic_and_matches_keras_predict(tmp_path):
    model = build("reference", seed=3)
    x = digits_batch(6)
    # One training step moves the batch-norm statistics away from their 0/1 start, so a
    # signature that ran in training mode (augmentation, dropout, batch statistics) would differ.
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(6) % 10, epochs=1, verbose=0)
    path = export_version(model, tmp_path, {"test_accuracy": 0.5})
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    first = fn(image=tf.constant(x))["probabilities"].numpy()
    second = fn(image=tf.constant(x))["probabilities"].numpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, model.predict(x, verbose=0), atol=1e-6)
    training_mode = model(x, training=True).numpy()
    assert not np.allclose(first, training_mode, atol=1e-3)


def test_warmup_requests_are_prediction_logs_the_model_accepts(tiny_version, serving_fn):
    path = tiny_version / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert 1 <= len(records) <= 1000  # TF Serving reads at most 1000
    loaded = tf.saved_model.load(str(tiny_version))
    asked = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == settings.MODEL_NAME
        name = request.model_spec.signature_name
        tensors = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        asked.append((name, len(next(iter(tensors.values())))))
        if name == "serving_default":
            image = tensors["image"]
            assert image.dtype == np.float32 and image.shape[1:] == (28, 28, 1)
            assert 0.0 <= image.min() and image.max() <= 1.0
        else:
            assert list(tensors) == ["image_bytes"]
            assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in tensors["image_bytes"])
        loaded.signatures[name](**{k: tf.constant(v) for k, v in tensors.items()})  # replays
    # Each signature: one image and a batch, the two shapes the client sends.
    assert asked == [("serving_default", 1), ("serving_default", 8)] + [
        ("predict_image", 1),
        ("predict_image", 8),
    ]


def test_metrics_json(tiny_version):
    metrics = json.loads((tiny_version / "assets.extra" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert set(metrics["per_class_accuracy"]) == {str(d) for d in range(10)}
    assert np.array(metrics["confusion_matrix"]).shape == (10, 10)
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["dataset"]["test"] == 1000
    # The default training set: the sample plus the forms, named as such.
    negatives = TrainConfig().nondigit_forms
    forms = f"600 continental+3000 lowres+4800 uji+3823 optdigits+{negatives} not-a-digit"
    assert metrics["dataset"]["source"] == f"sample+{forms}"
    assert metrics["dataset"]["train"] == 252 and metrics["dataset"]["validation"] == 28
    assert metrics["arch"] == "canvas"
    assert metrics["parameters"] == 421_403  # ten digits and "not a digit"
    rule = metrics["not_a_digit"]
    assert rule["classes"] == 11 and 0 <= rule["threshold"] <= 1 and rule["temperature"] > 0
    assert rule["chosen_on"]["digits"] == 899  # scikit-learn's even half
    assert metrics["epochs"] == 1
    assert metrics["training_seconds"] > 0
    assert metrics["version"] == 1
    assert metrics["created"].endswith("+00:00")
    assert metrics["packages"]["tensorflow"] == tf.__version__
    assert list(metrics["signatures"]) == ["serving_default", "predict_image"]
    assert list(metrics["signatures"]["predict_image"]["outputs"]) == [
        "probabilities",
        "digit",
        "is_digit",
        "digit_score",
        "mnist_image",
    ]


def test_plots_are_pngs(tiny_version):
    for name in ("confusion_matrix.png", "misclassified.png", "training_curves.png"):
        data = (tiny_version / "assets.extra" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name


def test_list_prints_a_table(tiny_model_base, capsys):
    assert export_main(["list", "--model-base-path", str(tiny_model_base)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("version"))
    assert "test acc" in lines[header]
    row = lines[header + 2].split()
    assert row[0] == "1" and "canvas" in row and "421,403" in row
    assert row[-1] == "serving_default,predict_image"


def test_list_missing_folder_is_one_line_error(tmp_path, capsys):
    assert export_main(["list", "--model-base-path", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "nope" in err and "\n" not in err


def test_list_empty_folder(tmp_path, capsys):
    assert export_main(["list", "--model-base-path", str(tmp_path)]) == 0
    assert "no versions" in capsys.readouterr().out
