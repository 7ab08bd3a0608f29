"""Model architectures, by name. Add a variant by writing a builder and listing it in ARCHES.

Every builder takes the same keyword arguments and returns an uncompiled Keras model that maps
float32 (N, 28, 28, 1) images in 0..1 to (N, 10) softmax probabilities. Augmentation lives inside
the model, so Keras switches it off (with dropout) whenever the model runs with training=False,
which is how the export calls it.
"""

import keras
from keras import layers

from train.augment import canvas_augmentation
from train.canvas_model import TestTimeAverage
from train.data import IMAGE_SHAPE, NUM_CLASSES

INPUT_SHAPE = (*IMAGE_SHAPE, 1)


def seed_for(seed: int | None, layer: int) -> int | None:
    # Keras 3 layers given the same integer seed draw identical random streams (equal dropout
    # masks, rotation/translation/zoom moving in lockstep): each random layer gets its own.
    return None if seed is None else seed * 100 + layer


def augmentation(seed: int | None = None) -> keras.Sequential:
    """Random rotation (about +/-14 degrees), translation and zoom; active only while training."""
    return keras.Sequential(
        [
            layers.RandomRotation(0.08, fill_mode="constant", seed=seed_for(seed, 1)),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed_for(seed, 2)),
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed_for(seed, 3)),
        ],
        name="augmentation",
    )


def conv_bn_relu(x, filters: int, bn_momentum: float):
    # No bias: batch normalisation's offset makes it redundant.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def classifier(x, bn_momentum: float, seed: int | None):
    """The reference's feature blocks and classifier: augmented images -> softmax."""
    blocks = ((32, 2, 0.20), (64, 2, 0.25), (128, 1, 0.30))
    for block, (filters, convs, dropout) in enumerate(blocks):
        for _ in range(convs):
            x = conv_bn_relu(x, filters, bn_momentum)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout, seed=seed_for(seed, 10 + block))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.35, seed=seed_for(seed, 20))(x)
    return layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)


def build_reference(bn_momentum: float = 0.99, seed: int | None = None) -> keras.Model:
    """The reference CNN of docs/model.md (437,546 parameters)."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    outputs = classifier(augmentation(seed)(inputs), bn_momentum, seed)
    return keras.Model(inputs, outputs, name="reference")


def build_canvas(bn_momentum: float = 0.99, seed: int | None = None) -> keras.Model:
    """The reference's blocks behind canvas-like augmentation (train/augment.py), averaged over
    one-pixel shifts at inference (train/canvas_model.py)."""
    image = keras.Input(INPUT_SHAPE, name="image")
    core = keras.Model(image, classifier(canvas_augmentation(seed)(image), bn_momentum, seed),
                       name="canvas_core")  # fmt: skip
    inputs = keras.Input(INPUT_SHAPE, name="image")
    return keras.Model(inputs, TestTimeAverage(core, name="probabilities")(inputs), name="canvas")


# canvas: the reference blocks with canvas-like augmentation and test-time averaging.
ARCHES = {"reference": build_reference, "canvas": build_canvas}


def build(arch: str, bn_momentum: float = 0.99, seed: int | None = None) -> keras.Model:
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHES)}")
    return ARCHES[arch](bn_momentum=bn_momentum, seed=seed)
