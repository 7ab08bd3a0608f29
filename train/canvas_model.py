"""Test-time averaging for the `canvas` arch (built in train/model.py): the reference CNN with
canvas-like augmentation and test-time averaging.

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

from train.data import NUM_CLASSES

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
