"""Model architectures, by name. Add a variant by writing a builder and listing it in ARCHES.

Every builder takes the same keyword arguments and returns an uncompiled Keras model that maps
float32 (N, 28, 28, 1) images in 0..1 to (N, classes) softmax probabilities: the ten digits, and
an eleventh, settings.NOT_A_DIGIT, when the run trains on what is not a digit
(train/nondigits.py). Augmentation lives inside the model, so Keras switches it off (with
dropout) whenever the model runs with training=False, which is how the export calls it.
"""

import keras
from keras import layers

from train.augment import canvas_augmentation, seed_for
from train.batch_norm import FusedBatchNormalization
from train.data import IMAGE_SHAPE, NUM_CLASSES

INPUT_SHAPE = (*IMAGE_SHAPE, 1)


def augmentation(seed: int | None = None) -> keras.Sequential:
    """The reference's random rotation, translation and zoom; active only while training.

    Rotation factor 0.08 as the reference specifies it (docs/model.md). Keras reads it as a
    fraction of a full turn, +/-28.8 degrees; kept, so the reference stays the reference.
    """
    return keras.Sequential(
        [
            layers.RandomRotation(0.08, fill_mode="constant", seed=seed_for(seed, 1)),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed_for(seed, 2)),
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed_for(seed, 3)),
        ],
        name="augmentation",
    )


def conv_bn_relu(x, filters: int, bn_momentum: float, fused: bool):
    # No bias: batch normalisation's offset makes it redundant.
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    batch_norm = FusedBatchNormalization if fused else layers.BatchNormalization
    x = batch_norm(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def classifier(
    x,
    bn_momentum: float,
    seed: int | None,
    dropout: bool = True,
    fused: bool = False,
    first_filters: int = 32,
    classes: int = NUM_CLASSES,
):
    """The reference's feature blocks and classifier: augmented images -> softmax.

    fused: batch normalisation trained with TensorFlow's fused kernel (train/batch_norm.py):
    the same maths with other rounding, and a cheaper training step. The reference
    keeps Keras' own layer, so that its runs stay bit for bit what they were.
    first_filters: the width of the first block, the one that works at full 28x28 resolution.
    """
    blocks = ((first_filters, 2, 0.20), (64, 2, 0.25), (128, 1, 0.30))
    for block, (filters, convs, rate) in enumerate(blocks):
        for _ in range(convs):
            x = conv_bn_relu(x, filters, bn_momentum, fused)
        x = layers.MaxPooling2D(2)(x)
        if dropout:
            x = layers.Dropout(rate, seed=seed_for(seed, 10 + block))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    if dropout:
        x = layers.Dropout(0.35, seed=seed_for(seed, 20))(x)
    return layers.Dense(classes, activation="softmax", name="probabilities")(x)


def build_reference(
    bn_momentum: float = 0.99, seed: int | None = None, classes: int = NUM_CLASSES
) -> keras.Model:
    """The reference CNN of docs/model.md (437,546 parameters with ten classes)."""
    inputs = keras.Input(INPUT_SHAPE, name="image")
    outputs = classifier(augmentation(seed)(inputs), bn_momentum, seed, classes=classes)
    return keras.Model(inputs, outputs, name="reference")


def build_canvas(
    bn_momentum: float = 0.99, seed: int | None = None, classes: int = NUM_CLASSES
) -> keras.Model:
    """The default: the reference's blocks with 16 filters in the first, without dropout, behind
    canvas-like augmentation (train/augment.py), with fused batch normalisation (421,146
    parameters with ten classes).

    With stroke-width changes on top of rotation, translation and zoom, the augmentation is
    regularisation enough for a run of 3,000 steps: dropout on top only slowed learning (in a
    recipe search, dropping it did better on MNIST test; bench/RESULTS.md).

    The first block convolves every pixel of the 28x28 image; with 32 filters its second
    convolution cost more of a training step's CPU than any other layer. With 16 the step costs
    about a third less, as accurate within a seed's spread, which brings the default's training
    time within its target (bench/RESULTS.md).
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    augmented = canvas_augmentation(seed)(inputs)
    outputs = classifier(
        augmented, bn_momentum, seed, dropout=False, fused=True, first_filters=16, classes=classes
    )
    return keras.Model(inputs, outputs, name="canvas")


ARCHES = {"reference": build_reference, "canvas": build_canvas}


def build(
    arch: str, bn_momentum: float = 0.99, seed: int | None = None, classes: int = NUM_CLASSES
) -> keras.Model:
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHES)}")
    return ARCHES[arch](bn_momentum=bn_momentum, seed=seed, classes=classes)
