"""Write one servable version: SavedModel with the serving signature, warmup requests, metrics.

The layout is the contract every downstream part relies on:

    <base>/<N>/saved_model.pb, variables/           signature "serving_default":
                                                      image          float32 [-1, 28, 28, 1], 0..1
                                                   -> probabilities  float32 [-1, 10] (softmax)
                                                      digit          int64   [-1]     (argmax)
    <base>/<N>/assets.extra/tf_serving_warmup_requests   TFRecord of PredictionLog protos
    <base>/<N>/assets.extra/metrics.json                 test accuracy, data, arch, versions...
    <base>/<N>/assets.extra/model.keras                  the Keras model, to train it further
"""

import datetime
import json
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np

import settings
from export.versions import write_version

SIGNATURE_NAME = "serving_default"
INPUT_NAME = "image"
INPUT_SHAPE = (None, 28, 28, 1)
ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
METRICS_FILE = "metrics.json"
# TF Serving reads only the warmup file in assets.extra/; this is for `python -m train
# --from-version N`, which fine-tunes the version's own weights.
KERAS_FILE = "model.keras"


def save_signature_model(model, path: Path) -> None:
    """Save `model` as a SavedModel whose only endpoint is the serving signature.

    The model is called with training=False, so augmentation and dropout are off and batch
    normalisation uses its moving statistics: the same image always gives the same output.
    """
    import keras
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(INPUT_SHAPE, tf.float32, name=INPUT_NAME)])
    def serve(image):
        probabilities = model(image, training=False)
        digit = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "digit": digit}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE_NAME, fn=serve)
    archive.write_out(str(path), verbose=False)


def save_keras_model(model, path: Path) -> None:
    """The model as a .keras file, without its optimizer's state (Adam's two slots per weight; a
    fine-tune starts a new one). Built again from its config: clone_model keeps the optimizer."""
    bare = type(model).from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)


def write_warmup_requests(path: Path, images: np.ndarray, model_name: str) -> None:
    """TF Serving's warmup file: PredictionLog records it replays when a version loads.

    One single-image request and one small batch, the two shapes the client sends.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    images = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in (images[:1], images[:8]):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE_NAME)
            )
            request.inputs[INPUT_NAME].CopyFrom(tf.make_tensor_proto(batch))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


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
    model_name: str = settings.MODEL_NAME,
) -> Path:
    """Export `model` as a new version under base_path and return its folder.

    metrics: written to assets.extra/metrics.json, completed with version, creation time,
    signature and package versions. warmup_images: float32 0..1 (N, 28, 28[, 1]) used for the
    warmup requests (blank images if None). extras(assets_extra_dir) may add files (plots) that
    must be part of the version.
    """
    if warmup_images is None:
        warmup_images = np.zeros((8, 28, 28, 1), np.float32)

    def write(tmp: Path, version: int) -> None:
        save_signature_model(model, tmp)
        assets = tmp / ASSETS_EXTRA
        assets.mkdir()
        write_warmup_requests(assets / WARMUP_FILE, warmup_images, model_name)
        save_keras_model(model, assets / KERAS_FILE)
        if extras is not None:
            extras(assets)
        meta = {
            **metrics,
            "version": version,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "signature": {
                "name": SIGNATURE_NAME,
                "inputs": {INPUT_NAME: "float32 [-1, 28, 28, 1], 0..1, white digit on black"},
                "outputs": {"probabilities": "float32 [-1, 10]", "digit": "int64 [-1]"},
            },
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
