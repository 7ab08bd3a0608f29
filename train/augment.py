"""Training-only augmentation that makes MNIST look like canvas drawings.

MNIST's strokes are even and its digits upright; people draw with thin or fat brushes and lean
their digits. `StrokeWidth` thickens or thins strokes (grey-level dilation or erosion, blended by
a random amount per image), and `canvas_augmentation` adds it to shear and the reference's
rotation, translation and zoom. Like the reference's augmentation, all of it is the identity when
the model runs with training=False, which is how the export calls it.
"""

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="train")
class StrokeWidth(layers.Layer):
    """Per image, blend towards a 3x3 dilation (fatter) or erosion (thinner) of the strokes.

    A blend amount of 1 adds or removes about one pixel on each side of a 28x28 stroke, as much as
    the difference between MNIST's thin and thick writers; smaller amounts give widths in between.
    """

    def __init__(self, thicker: float = 1.0, thinner: float = 0.6, seed: int | None = None, **kw):
        super().__init__(**kw)
        self.thicker, self.thinner, self.seed = thicker, thinner, seed
        self._generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch = tf.shape(images)[0]
        dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
        eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
        u = keras.random.uniform((batch, 1, 1, 1), -1.0, 1.0, seed=self._generator)
        # u > 0: towards dilation by u * thicker; u < 0: towards erosion by |u| * thinner.
        grow = tf.maximum(u, 0.0) * self.thicker
        shrink = tf.maximum(-u, 0.0) * self.thinner
        out = images + grow * (dilated - images) + shrink * (eroded - images)
        return tf.clip_by_value(out, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "thicker": self.thicker,
            "thinner": self.thinner,
            "seed": self.seed,
        }


def canvas_augmentation(seed: int | None = None) -> keras.Sequential:
    """Stroke width, shear, then the reference's rotation, translation and zoom."""
    return keras.Sequential(
        [
            StrokeWidth(seed=seed),
            layers.RandomShear(x_factor=0.25, fill_mode="constant", seed=seed),
            layers.RandomRotation(0.08, fill_mode="constant", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed),
        ],
        name="canvas_augmentation",
    )
