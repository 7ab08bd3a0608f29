"""Keras' BatchNormalization, trained with TensorFlow's fused kernel: same maths, less CPU.

Keras 3 computes a training batch's statistics with separate ops (moments, then the
normalisation), and their gradients likewise: several passes over every activation. TensorFlow's
FusedBatchNormV3 and its gradient do it in one kernel each, which makes the CNN's training step
cheaper in CPU time (bench/RESULTS.md). Inference (training=False), and so the exported serving
graph, is Keras' own.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="train")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    def call(self, inputs, training=None, mask=None):
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.center
            and self.scale
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype == tf.float32
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
        )
        # The kernel hands back the unbiased variance, for running averages; Keras averages the
        # biased one, which is also what normalised this batch.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return outputs
