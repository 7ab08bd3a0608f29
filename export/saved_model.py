"""Write one servable version: SavedModel with its two signatures, warmup requests, metrics.

The layout is the contract every downstream part relies on:

    <base>/<N>/saved_model.pb, variables/                signatures "serving_default" (28x28
                                                         images) and "predict_image" (encoded
                                                         images), their tensors in SIGNATURES
    <base>/<N>/assets.extra/tf_serving_warmup_requests   TFRecord of PredictionLog protos
    <base>/<N>/assets.extra/metrics.json                 test accuracy, data, arch, versions...
    <base>/<N>/assets.extra/model.keras                  the Keras model, to train it further

predict_image turns each image into the 28x28 digit the network reads in the graph itself
(export/image_preprocessing.py), so a version owns its input's normalisation, and `mnist_image`
shows what the network saw.

A network with an eleventh, not-a-digit class (settings.NOT_A_DIGIT) gives digit_score = 1 - its
probability, and is_digit = digit_score >= the version's threshold; `probabilities` are the ten
digits' own, tempered: softmax(log p / temperature). train/calibration.py chooses both figures and
computes the same in numpy; metrics.json keeps them. A ten-class network says every image is a
digit (score 1).
"""

import datetime
import json
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

import settings
from export.versions import write_version

SIGNATURE_NAME = settings.SIGNATURE_NAME
INPUT_NAME = "image"
INPUT_SHAPE = (None, 28, 28, 1)
IMAGE_SIGNATURE_NAME = settings.IMAGE_SIGNATURE_NAME
IMAGE_INPUT_NAME = "image_bytes"
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
METRICS_FILE = "metrics.json"
# TF Serving reads only the warmup file in assets.extra/; this is for `python -m train
# --from-version N`, which fine-tunes the version's own weights.
KERAS_FILE = "model.keras"
SIGNATURES = {
    SIGNATURE_NAME: {
        "inputs": {INPUT_NAME: "float32 [-1, 28, 28, 1], 0..1, white digit on black"},
        "outputs": {
            "probabilities": "float32 [-1, 10]",
            "digit": "int64 [-1]",
            "is_digit": "bool [-1], false: this image is not a digit (digit_score < threshold)",
            "digit_score": "float32 [-1], 0..1, higher: more like a digit",
        },
    },
    IMAGE_SIGNATURE_NAME: {
        "inputs": {IMAGE_INPUT_NAME: "string [-1], encoded PNG, JPEG, GIF or BMP, any size"},
        "outputs": {
            "probabilities": "float32 [-1, 10], all 0 for an image without ink",
            "digit": "int64 [-1], -1 for an image without ink",
            "is_digit": "bool [-1], false for an image without ink",
            "digit_score": "float32 [-1], 0 for an image without ink",
            "mnist_image": "float32 [-1, 28, 28, 1], the digit as the network saw it",
        },
    },
}
TINY = 1e-12  # log(0) guard for the tempered probabilities


def save_signature_model(
    model, path: Path, threshold: float = 0.0, temperature: float = 1.0
) -> None:
    """Save the Keras model `model` as a SavedModel with both signatures."""
    import keras
    import tensorflow as tf

    from export.image_preprocessing import images_to_mnist

    def network(images):
        # training=False: augmentation and dropout are off and batch normalisation uses its
        # moving statistics, so the same image always gives the same output.
        p = model(images, training=False)
        if p.shape[-1] > settings.NOT_A_DIGIT:
            score = 1.0 - p[:, settings.NOT_A_DIGIT]
        else:
            score = tf.ones_like(p[:, 0])
        logits = tf.math.log(tf.maximum(p[:, : settings.NOT_A_DIGIT], TINY)) / temperature
        return tf.nn.softmax(logits), score

    @tf.function(
        input_signature=[tf.TensorSpec(INPUT_SHAPE, tf.float32, name=INPUT_NAME)], autograph=False
    )
    def serve(image):
        # NaN or Infinity pixels would come out as a confident digit: refused (400), as the
        # image signature refuses an image it cannot read.
        image = tf.debugging.check_numerics(image, "image pixels must be numbers from 0 to 1")
        probabilities, score = network(image)
        digit = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "digit": digit,
            "is_digit": score >= threshold,
            "digit_score": score,
        }

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_INPUT_NAME)], autograph=False
    )
    def serve_image(image_bytes):
        images, found = images_to_mnist(image_bytes)
        # An image without ink is not a digit: no guess, all probabilities 0 and digit -1.
        probabilities, score = network(images)
        probabilities = tf.where(found[:, None], probabilities, 0.0)
        digit = tf.where(found, tf.argmax(probabilities, axis=-1, output_type=tf.int64), -1)
        score = tf.where(found, score, 0.0)
        return {
            "probabilities": probabilities,
            "digit": digit,
            "is_digit": found & (score >= threshold),
            "digit_score": score,
            "mnist_image": images,
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE_NAME, fn=serve)
    archive.add_endpoint(name=IMAGE_SIGNATURE_NAME, fn=serve_image)
    archive.write_out(str(path), verbose=False)


def save_keras_model(model, path: Path) -> None:
    """The model as a .keras file, without its optimizer's state (Adam's two slots per weight; a
    fine-tune starts a new one). Built again from its config: clone_model keeps the optimizer."""
    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)


def write_warmup_requests(path: Path, images: np.ndarray, model_name: str) -> None:
    """TF Serving's warmup file: PredictionLog records it replays when a version loads.

    For each signature, one single-image request and one small batch, the two shapes the client
    sends; predict_image gets the images drawn large on a canvas, as PNGs.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    pngs = canvas_pngs(images[:8])
    requests = [
        (SIGNATURE_NAME, INPUT_NAME, tf.make_tensor_proto(batch))
        for batch in (images[:1], images[:8])
    ] + [
        (IMAGE_SIGNATURE_NAME, IMAGE_INPUT_NAME, tf.make_tensor_proto(batch, dtype=tf.string))
        for batch in (pngs[:1], pngs[:8])
    ]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, input_name, tensor in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            request.inputs[input_name].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def canvas_pngs(images: np.ndarray) -> list[bytes]:
    """28x28 digits (0..1) enlarged to the browser's canvas, as PNGs."""
    import tensorflow as tf

    big = tf.image.resize(images.reshape(-1, 28, 28, 1), (settings.CANVAS_SIZE,) * 2)
    levels = tf.cast(tf.round(tf.clip_by_value(big, 0, 1) * 255), tf.uint8)
    return [tf.io.encode_png(image).numpy() for image in levels]


def package_versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def export_version(
    model,
    base_path: Path,
    metrics: dict,
    version: int | None = None,
    warmup_images: np.ndarray | None = None,
    extras: Callable[[Path], None] | None = None,
    threshold: float = 0.0,
    temperature: float = 1.0,
) -> Path:
    """Export the Keras model `model` as a new version under base_path; return its folder.

    metrics: written to assets.extra/metrics.json, completed with version, creation time,
    signature and package versions. warmup_images: float32 0..1 (N, 28, 28[, 1]) used for the
    warmup requests (blank images if None). extras(assets_extra_dir) may add files (plots) that
    must be part of the version. threshold, temperature: the not-a-digit rule (module docstring);
    a threshold above 1 refuses every image, 0 none.
    """
    if warmup_images is None:
        warmup_images = np.zeros((8, 28, 28, 1), np.float32)

    def write(tmp: Path, version: int) -> None:
        save_signature_model(model, tmp, threshold, temperature)
        assets = tmp / ASSETS_EXTRA
        assets.mkdir()
        write_warmup_requests(assets / WARMUP_FILE, warmup_images, settings.MODEL_NAME)
        save_keras_model(model, assets / KERAS_FILE)
        if extras is not None:
            extras(assets)
        meta = {
            **metrics,
            "version": version,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "signatures": SIGNATURES,
            "packages": package_versions(),
        }
        (assets / METRICS_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    return write_version(base_path, write, version)


def read_metrics(version_path: Path) -> dict:
    """metrics.json of a version, or {} if missing or unreadable (e.g. a hand-copied model)."""
    try:
        return json.loads((version_path / ASSETS_EXTRA / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return {}
