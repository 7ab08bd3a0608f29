"""python -m train --feedback --from-version: fine-tuning a version on people's corrections."""

import json
import shutil

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from image_reference import split_digits

import settings
from export.saved_model import ASSETS_EXTRA, KERAS_FILE
from feedback.split import held_aside
from feedback.store import open_store
from train import calibration
from train.__main__ import main as train_main
from train.__main__ import parse_args
from train.canvas_digits import sklearn_digits
from train.data import to_model_input
from train.finetune import load_members, load_model, resolve, version_accuracy

DRAWINGS = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Real handwritten digits (scikit-learn's), stored as the app stores a correction."""
    db = str(tmp_path_factory.mktemp("feedback") / "feedback.sqlite")
    store = open_store(db)
    for canvas, label in sklearn_digits(limit=DRAWINGS):
        found = split_digits(canvas)  # what predict_image gives the app for each digit
        png = cv2.imencode(".png", canvas)[1].tobytes()
        store.add(png, found, str(label), "canvas", prediction="1", model_version=1)
    store.close()
    return db


def signature_digits(version_path, images: np.ndarray) -> np.ndarray:
    serve = tf.saved_model.load(str(version_path)).signatures[settings.SIGNATURE_NAME]
    return serve(image=to_model_input(images))["digit"].numpy()


def test_fine_tuning_from_a_version_exports_the_next_with_the_feedback_figures(
    tiny_model_base, store, tmp_path, capsys
):
    base = tmp_path / "mnist"
    shutil.copytree(tiny_model_base, base)
    argv = ["--data", "sample", "--limit", "280", "--batch-size", "64", "--epochs", "1",
            "--continental-forms", "0", "--lowres-forms", "0", "--verbose", "0",
            "--model-base-path", str(base), "--feedback", store,
            "--from-version", "latest"]  # fmt: skip
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    assert f"exported {base / '2'}" in out
    metrics = json.loads((base / "2" / ASSETS_EXTRA / "metrics.json").read_text())
    assert metrics["from_version"] == 1 and metrics["arch"] == "canvas"

    found = open_store(store).digits()
    aside = np.array([held_aside(i) for i in found.drawing_ids])
    assert 0 < aside.sum() < DRAWINGS  # the fixed share: some held aside, most trained on
    figures = metrics["feedback"]
    assert figures["drawings"] == DRAWINGS and figures["store"] == store
    assert figures["digits_trained_on"] == int((~aside).sum())
    assert figures["held_aside_digits"] == int(aside.sum())
    # 252 sample images: corrections repeated to about a tenth of the training images.
    assert figures["repeats"] == max(1, round(0.1 * 252 / (0.9 * int((~aside).sum()))))
    assert figures["before_version"] == 1
    x_aside, y_aside = found.images[aside], found.labels[aside]
    assert figures["held_aside_accuracy_before"] == version_accuracy(base / "1", x_aside, y_aside)
    after = float(np.mean(signature_digits(base / "2", x_aside) == y_aside))
    assert figures["held_aside_accuracy_after"] == pytest.approx(after)
    assert figures["mnist_test_accuracy_after"] == metrics["test_accuracy"]
    assert (
        figures["mnist_test_accuracy_before"]
        == json.loads((base / "1" / ASSETS_EXTRA / "metrics.json").read_text())["test_accuracy"]
    )
    assert "your drawings: trained on" in out and "with version 1" in out

    # Fine-tuned, not trained anew: version 2 starts from version 1's weights and moved them.
    first = load_model(resolve(base, "1"))
    second = load_model(resolve(base, "2"))
    # The first Dense layer's kernel, found by type: Keras numbers layer names per process.
    before, after_weights = (
        next(la.kernel.numpy() for la in m.layers if isinstance(la, keras.layers.Dense))
        for m in (first, second)
    )
    change = np.abs(after_weights - before).mean() / np.abs(before).mean()
    assert 0 < change < 0.5


def test_a_version_averaging_two_models_is_fine_tuned_model_by_model(store, tmp_path, capsys):
    base = tmp_path / "mnist"
    argv = ["--data", "sample", "--limit", "280", "--batch-size", "256", "--epochs", "1",
            "--continental-forms", "0", "--lowres-forms", "0", "--uji-forms", "0",
            "--optdigits-forms", "0", "--verbose", "0", "--model-base-path", str(base)]  # fmt: skip
    assert train_main([*argv, "--members", "2"]) == 0
    # --members is the version's own when fine-tuning: 1 here changes nothing.
    argv += ["--feedback", store, "--from-version", "latest", "--members", "1"]
    assert train_main(argv) == 0
    out = capsys.readouterr().out
    assert "model 2 of 2: seed 43" in out and f"exported {base / '2'}" in out
    metrics = json.loads((base / "2" / ASSETS_EXTRA / "metrics.json").read_text())
    assert metrics["members"] == 2 and metrics["from_version"] == 1
    assert len(metrics["member_test_accuracies"]) == 2

    before, after = (load_members(resolve(base, v)) for v in ("1", "2"))
    assert len(before) == len(after) == 2
    for first, second in zip(before, after, strict=True):
        kernels = [
            next(la.kernel.numpy() for la in m.layers if isinstance(la, keras.layers.Dense))
            for m in (first, second)
        ]
        assert 0 < np.abs(kernels[1] - kernels[0]).mean() / np.abs(kernels[0]).mean() < 0.5
    # Exported as one model whose answer is the average of the two fine-tuned ones.
    images = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    x = to_model_input(images).numpy()
    averaged = np.mean([m.predict(x, verbose=0) for m in after], axis=0)
    temperature = json.loads((base / "2" / ASSETS_EXTRA / "metrics.json").read_text())[
        "not_a_digit"
    ]["temperature"]
    expected = calibration.digit_probabilities(averaged, temperature)
    serve = tf.saved_model.load(str(base / "2")).signatures[settings.SIGNATURE_NAME]
    np.testing.assert_allclose(serve(image=x)["probabilities"].numpy(), expected, atol=1e-6)


def test_what_cannot_be_fine_tuned_is_one_line_before_training(
    tiny_model_base, store, tmp_path, capsys
):
    base = tmp_path / "mnist"
    shutil.copytree(tiny_model_base, base)
    argv = ["--data", "sample", "--model-base-path", str(base)]
    assert train_main([*argv, "--from-version", "7"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --from-version 7: no such version under {base} (1)"
    )
    # No Keras file: nothing to train further.
    (base / "1" / ASSETS_EXTRA / KERAS_FILE).unlink()
    assert train_main([*argv, "--from-version", "latest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: version 1 cannot be trained further: it has no ")
    assert err.count("\n") == 1
    empty = str(tmp_path / "empty.sqlite")
    assert train_main([*argv, "--feedback", empty]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the feedback store {empty} holds no drawings yet")
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # nothing was written


def test_feedback_flags(monkeypatch, capsys):
    monkeypatch.delenv("FEEDBACK_DB", raising=False)
    config = parse_args(["--feedback", "--from-version", "latest"])
    assert config.feedback == settings.feedback_db() and config.from_version == "latest"
    assert parse_args(["--feedback", "x.sqlite"]).feedback == "x.sqlite"
    assert parse_args([]).feedback is None and parse_args([]).from_version is None
    for bad in (["--from-version", "v2"], ["--from-version", "0"], ["--feedback-share", "1"]):
        with pytest.raises(SystemExit):
            parse_args(bad)
    assert "--from-version" in capsys.readouterr().err
