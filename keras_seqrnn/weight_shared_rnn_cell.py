"""`WeightSharedRNNCell`: the plain tanh RNN cell."""

import keras

from keras_seqrnn import recurrence
from keras_seqrnn import validation


@keras.saving.register_keras_serializable(package="keras_seqrnn")
class WeightSharedRNNCell(keras.layers.Layer):
    """The plain RNN cell, `h_t = tanh(x_t W + h_{t-1} U + b)`.

    The same weights `W` (`kernel`), `U` (`recurrent_kernel`) and `b`
    (`bias`) serve every time step, which is what lets the network read
    sequences of any length. The cell processes one step; run it over a
    sequence with `keras.layers.RNN(cell)`, stack several with
    `keras.layers.StackedRNNCells`, or use `HighwayStackedRNN`, which runs
    the same step math in its own faster loop.

    The weights have the names and shapes of `keras.layers.SimpleRNNCell`'s,
    so weights copy between the two with `set_weights(get_weights())` and
    the two give the same outputs.

    Args:
        units: Positive integer, dimensionality of the state and output, L.
        activation: Activation function. Default: `"tanh"`. `None` means
            linear.
        use_bias: Boolean, whether to add the bias `b`. Default: `True`.
        kernel_initializer: Initializer for `W`, the `kernel` of shape
            `(input_dim, units)`. Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for `U`, the `recurrent_kernel`
            of shape `(units, units)`. Default: `"orthogonal"`.
        bias_initializer: Initializer for `b`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for `W`. Default: `None`.
        recurrent_regularizer: Regularizer for `U`. Default: `None`.
        bias_regularizer: Regularizer for `b`. Default: `None`.
        kernel_constraint: Constraint for `W`. Default: `None`.
        recurrent_constraint: Constraint for `U`. Default: `None`.
        bias_constraint: Constraint for `b`. Default: `None`.
        dropout: Float in `[0, 1)`, the fraction of input units dropped
            in training. Default: `0.0`.
        recurrent_dropout: Float in `[0, 1)`, the fraction of state units
            dropped before `U` in training. Default: `0.0`.
        seed: Integer, random seed for dropout. Default: `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, the step's input `x_t`.
        states: A list holding one `(batch, units)` tensor, `h_{t-1}`.
        training: Python boolean, whether dropout applies. Default: `False`.

    Returns:
        `(h_t, [h_t])`: the output and the new state, both
        `(batch, units)`.

    Masking:
        The cell sees one step; `keras.layers.RNN` applies the mask by
        keeping the previous state at masked steps.

    Dropout:
        Keras draws one dropout mask per sequence only for its own cells.
        Here a fresh mask is drawn at every step `call`; `HighwayStackedRNN`
        draws one per sequence (variational dropout, Gal and Ghahramani
        2016).

    Example:

    ```python
    inputs = np.random.random((32, 10, 8)).astype("float32")
    rnn = keras.layers.RNN(keras_seqrnn.WeightSharedRNNCell(4))
    outputs = rnn(inputs)  # (32, 4)
    ```

    Reference:
        - [Elman, 1990. Finding Structure in Time](
            https://doi.org/10.1207/s15516709cog1402_1)
    """

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        validation.check_positive_int("units", units)
        validation.check_rate("dropout", dropout)
        validation.check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(
            recurrent_regularizer
        )
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                name="bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def layer_weights(self) -> recurrence.LayerWeights:
        """The cell's weights as `recurrence.LayerWeights` (no gates)."""
        return recurrence.LayerWeights(
            kernel=self.kernel,
            recurrent_kernel=self.recurrent_kernel,
            bias=self.bias,
        )

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        recurrent_dropout_mask = None
        if training and self.dropout > 0:
            inputs = keras.random.dropout(
                inputs, self.dropout, seed=self.seed_generator
            )
        if training and self.recurrent_dropout > 0:
            recurrent_dropout_mask = keras.random.dropout(
                keras.ops.ones_like(h_prev),
                self.recurrent_dropout,
                seed=self.seed_generator,
            )
        weights = recurrence.fuse_weights(self.layer_weights())
        h, _ = recurrence.step(
            recurrence.project_inputs(inputs, weights),
            h_prev,
            h_prev,
            weights,
            self.activation,
            recurrent_dropout_mask=recurrent_dropout_mask,
        )
        new_states = [h] if isinstance(states, (list, tuple)) else h
        return h, new_states

    def get_initial_state(self, batch_size=None):
        return [
            keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        ]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer
            ),
            "recurrent_regularizer": keras.regularizers.serialize(
                self.recurrent_regularizer
            ),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer
            ),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint
            ),
            "recurrent_constraint": keras.constraints.serialize(
                self.recurrent_constraint
            ),
            "bias_constraint": keras.constraints.serialize(
                self.bias_constraint
            ),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}
