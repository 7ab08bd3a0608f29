"""The `canvas` arch: the reference CNN with canvas-like augmentation and test-time averaging.

Same feature blocks and classifier as the reference (docs/model.md), so the comparison isolates
what changed:
- augmentation (train/augment.py) adds stroke-width changes and shear to the reference's
  rotation, translation and zoom: canvas strokes are fatter or thinner and more slanted than
  MNIST's;
- at inference the model averages its probabilities over the image and its four one-pixel shifts,
  which smooths out decisions that hinge on where preprocessing put the digit. Training sees
  single images (same cost per step as the reference); serving costs five forward passes of a
  small CNN, still well under a millisecond per digit.
"""

import keras
import tensorflow as tf
from keras import layers

from train.augment import canvas_augmentation
from train.data import IMAGE_SHAPE, NUM_CLASSES

INPUT_SHAPE = (*IMAGE_SHAPE, 1)
SHIFTS = ((0, 1), (0, -1), (1, 0), (-1, 0))  # (rows, columns)


@keras.saving.register_keras_serializable(package="train")
class TestTimeAverage(layers.Layer):
    """Runs `core` on the image; when not training, averages it over one-pixel shifts too."""

    def __init__(self, core: keras.Model, **kw):
        super().__init__(**kw)
        self.core = core

    def call(self, images, training=None):
        if training:
            return self.core(images, training=True)
        # MNIST-style digits have a 4-pixel empty border, so rolling never wraps ink around.
        variants = [images] + [tf.roll(images, shift, axis=(1, 2)) for shift in SHIFTS]
        n = tf.shape(images)[0]
        probabilities = self.core(tf.concat(variants, axis=0), training=False)
        return tf.reduce_mean(tf.reshape(probabilities, (len(variants), n, NUM_CLASSES)), axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], NUM_CLASSES)


def conv_bn_relu(x, filters: int, bn_momentum: float):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    return layers.ReLU()(x)


def build_canvas(bn_momentum: float = 0.99, seed: int | None = None) -> keras.Model:
    """Reference blocks behind canvas augmentation, averaged over shifts at inference."""
    image = keras.Input(INPUT_SHAPE, name="image")
    x = canvas_augmentation(seed)(image)
    for filters, convs, dropout in ((32, 2, 0.20), (64, 2, 0.25), (128, 1, 0.30)):
        for _ in range(convs):
            x = conv_bn_relu(x, filters, bn_momentum)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout, seed=seed)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.35, seed=seed)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    core = keras.Model(image, outputs, name="canvas_core")

    inputs = keras.Input(INPUT_SHAPE, name="image")
    averaged = TestTimeAverage(core, name="probabilities")(inputs)
    return keras.Model(inputs, averaged, name="canvas")
