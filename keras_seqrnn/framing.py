"""Frame stacking: `frame_length` consecutive steps read as one.

A recurrence over a 1,000-step series trains slowly and forgets; read ten
steps at a time it runs a 100-step recurrence whose input at each step is
the ten steps' features side by side (Sak et al. 2015 stacked acoustic
frames the same way for recurrent speech models). The first layer's input
kernel then sees `frame_length * features` inputs: a learned projection of
each frame, as a strided convolution would be. The Keras classifier, the
TFLite graphs and quantization-aware training all frame with this function.
"""

import tensorflow as tf


def stack_frames(
    x: tf.Tensor, lengths: tf.Tensor, frame_length: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Groups every `frame_length` steps into one.

    Args:
        x: `(batch, time, features)`, zero after each sequence's end (the
            last frame of a sequence is completed with those zeros).
        lengths: `(batch,)` int32, each sequence's number of steps.
        frame_length: positive integer.

    Returns:
        `(frames, frame_lengths)`: `(batch, ceil(time / frame_length),
        frame_length * features)`, step `t` of frame `f` at features
        `[t * features, (t + 1) * features)`, and each sequence's number of
        frames, `ceil(length / frame_length)`.

    Reference:
        - [Sak et al., 2015. Fast and Accurate Recurrent Neural Network
            Acoustic Models for Speech Recognition](
            https://arxiv.org/abs/1507.06947)
    """
    if frame_length == 1:
        return x, lengths
    steps = x.shape[1]
    if steps is None:
        steps = tf.shape(x)[1]
    if x.shape[1] is None or steps % frame_length:
        x = tf.pad(x, [[0, 0], [0, -steps % frame_length], [0, 0]])
    frames = -(-steps // frame_length)
    x = tf.reshape(x, [-1, frames, frame_length * x.shape[-1]])
    return x, (lengths + (frame_length - 1)) // frame_length
