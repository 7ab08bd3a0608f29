"""`python -m train --from-version N|latest`: start from a version's weights and fine-tune them.

A version that averages several models (--members) is fine-tuned model by model, each as a run of
its own seed would be, and averaged again; train/run.py trains them, in the loop of new models.
Each version keeps its Keras model in assets.extra/model.keras (export/saved_model.py).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from export.saved_model import ASSETS_EXTRA, KERAS_FILE, SIGNATURE_NAME, read_metrics
from export.versions import VersionError, list_versions
from train import data

if TYPE_CHECKING:
    import keras

# A fine-tune starts from trained weights: a tenth of the peak learning rate of a full run moves
# them towards the new images without undoing what they learnt from MNIST.
LEARNING_RATE_FACTOR = 0.1


@dataclass
class Start:
    version: int
    path: Path
    metrics: dict  # the version's metrics.json ({} if it has none)


def resolve(base_path: Path, spec: str) -> Start:
    """The version `spec` names ("latest" or a number) under base_path, checked to exist."""
    versions = list_versions(base_path)
    if spec == "latest":
        if not versions:
            raise VersionError(f"--from-version latest: no version under {base_path} yet")
        version = versions[-1]
    elif spec.isdigit() and int(spec) in versions:
        version = int(spec)
    else:
        have = ", ".join(map(str, versions)) or "none"
        raise VersionError(f"--from-version {spec}: no such version under {base_path} ({have})")
    path = base_path / str(version)
    return Start(version, path, read_metrics(path))


def load_model(start: Start) -> "keras.Model":
    """The version as a Keras model that can be trained further."""
    import keras

    import train.model  # noqa: F401 - registers the custom layers the file names

    keras_file = start.path / ASSETS_EXTRA / KERAS_FILE
    if not keras_file.is_file():
        raise VersionError(
            f"version {start.version} cannot be trained further: it has no {ASSETS_EXTRA}/"
            f"{KERAS_FILE} (exported before versions kept one); train a new version without "
            "--from-version"
        )
    try:
        return keras.saving.load_model(keras_file)
    except Exception as e:  # a damaged or foreign file: Keras raises many kinds
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise VersionError(f"version {start.version}: cannot load {keras_file}: {first}") from e


def load_members(start: Start) -> list["keras.Model"]:
    """The version's models, each to be trained on its own: the one, or those it averages."""
    import keras

    model = load_model(start)
    count = start.metrics.get("members", 1)
    if count == 1:
        return [model]
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(members) != count:
        raise VersionError(
            f"version {start.version} cannot be trained further: its metrics name {count} "
            f"models, its {KERAS_FILE} holds {len(members)}"
        )
    return members


def version_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float | None:
    """A version's accuracy on uint8 (n, 28, 28) images, through its serving signature: what
    the server would answer. None for no images."""
    import tensorflow as tf

    if not len(labels):
        return None
    serve = tf.saved_model.load(str(path)).signatures[SIGNATURE_NAME]
    digits = []
    for start in range(0, len(labels), 1024):
        batch = data.to_model_input(images[start : start + 1024])
        digits.append(serve(image=batch)["digit"].numpy())
    return float(np.mean(np.concatenate(digits) == labels))
