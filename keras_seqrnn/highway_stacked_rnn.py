"""`HighwayStackedRNN`: stacked plain RNN layers joined by highway gates."""

import keras
import tensorflow as tf

from keras_seqrnn import recurrence
from keras_seqrnn import validation
from keras_seqrnn.weight_shared_rnn_cell import WeightSharedRNNCell

HIGHWAY_MODES = ("depth", "time", "both", None)


@keras.saving.register_keras_serializable(package="keras_seqrnn")
class HighwayStackedRNN(keras.layers.Layer):
    """Stacked RNN layers joined by highway (gated skip) connections.

    Layer `l` reads the output sequence of layer `l - 1` (the first reads
    the inputs). Each layer is a `WeightSharedRNNCell`,
    `h_t = tanh(x_t W + h_{t-1} U + b)`, run over time by this layer's own
    loop: the input projection `x W` of all steps is one matrix product
    before the loop, and the step math is the one the cell and the TFLite
    export use (`keras_seqrnn.recurrence.step`).

    Highway gates fight vanishing gradients:

    - `"depth"`: a transform gate between stacked layers,
      `g_t = sigmoid(x_t W_g + b_g)`, `y_t = g_t * h_t + (1 - g_t) * x_t P`,
      where `x_t` is the layer's input and `P` a learned projection where
      the input size differs from `units` (the identity otherwise). This
      applies to every layer, the first included (Srivastava et al. 2015).
    - `"time"`: a carry gate across time inside each layer (RHN-style,
      Zilly et al. 2017), `c_t = sigmoid(x_t W_c + h_{t-1} U_c + b_c)`,
      `h_t = c_t * tanh(x_t W + h_{t-1} U + b) + (1 - c_t) * h_{t-1}`.
    - `"both"`: both gates.
    - `None`: a plain stack, the baseline.

    The gate biases start at `gate_bias`, negative by default, so that each
    gate starts mostly closed: a deep stack starts near the identity over
    depth (and over time) and gradients reach every layer. Srivastava et
    al. (2015) used -1 to -3, Zilly et al. (2017) -2 to -4.

    Args:
        units: Positive integer, the state size of every layer, or a list
            with one positive integer per layer.
        num_layers: Positive integer, the number of stacked layers.
            Default: `len(units)` when `units` is a list, else `1`.
        highway: One of `"depth"`, `"time"`, `"both"` or `None`.
            Default: `"depth"`.
        gate_bias: Float, the initial bias of every highway gate.
            Default: `-2.0`.
        activation: The candidate's activation. Default: `"tanh"`.
        use_bias: Boolean, whether the RNN layers use a bias `b`.
            Default: `True`.
        kernel_initializer: Initializer for the input kernels (`W`, `W_g`,
            `W_c`, `P`). Default: `"glorot_uniform"`.
        recurrent_initializer: Initializer for the recurrent kernels (`U`,
            `U_c`). Default: `"orthogonal"`.
        bias_initializer: Initializer for `b`. Default: `"zeros"`.
        kernel_regularizer: Regularizer for the input kernels.
            Default: `None`.
        recurrent_regularizer: Regularizer for the recurrent kernels.
            Default: `None`.
        bias_regularizer: Regularizer for `b`. Default: `None`.
        dropout: Float in `[0, 1)`, the fraction of units dropped from each
            layer's output before the next layer reads it, one mask per
            sequence. Default: `0.0`.
        recurrent_dropout: Float in `[0, 1)`, the fraction of state units
            dropped before the recurrent kernels, one mask per sequence
            (Gal and Ghahramani 2016). Default: `0.0`.
        return_sequences: Boolean, whether to return the last layer's output
            at every step rather than at the last step. Default: `False`.
        return_state: Boolean, whether to also return each layer's final
            state `h_T`. Default: `False`.
        go_backwards: Boolean, whether to read the sequence backwards, from
            its last step to its first, returning the reversed sequence
            with `return_sequences=True`, as Keras' RNN layers do.
            `keras.layers.Bidirectional` sets it on its backward copy.
            Default: `False`.
        unroll: Boolean, whether to unroll the loop over time (the time
            axis must then be static). Under XLA an unrolled stack compiles
            several times longer and trains no faster; the TFLite export
            unrolls for the targets that need it. Default: `False`.
        seed: Integer, random seed for dropout. Default: `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 3D tensor `(batch, time, features)`; `time` may be `None`.
        initial_state: None (zero states), or a list of each layer's
            initial state, `(batch, units[l])`. Default: `None`.
        mask: A boolean tensor `(batch, time)`, `True` for real steps.
            Default: the mask of the previous layer, else no masking.
        training: Python boolean, whether dropout applies. Default: `False`.

    Returns:
        The last layer's output, `(batch, units[-1])` at the last step, or
        `(batch, time, units[-1])` with `return_sequences=True`. With
        `return_state=True`, a list: that output, then each layer's final
        state `(batch, units[l])`.

    Masking:
        Masked steps carry every layer's state and output unchanged, so a
        padded sequence ends in the state of its last real step and gives
        the same result as the sequence alone, unpadded. A sequence with no
        real step keeps the zero initial state. With
        `return_sequences=True` the mask is propagated to the next layer;
        without, the loop (`unroll=False`) skips the steps before the
        batch's first real step and after its last, so a batch of short
        sequences padded to a long shape costs only its own length, read
        forwards or backwards.

    Example:

    ```python
    inputs = np.random.random((32, 29, 12)).astype("float32")
    rnn = keras_seqrnn.HighwayStackedRNN(64, num_layers=3, highway="both")
    outputs = rnn(inputs)  # (32, 64)
    both = keras.layers.Bidirectional(keras_seqrnn.HighwayStackedRNN(64))
    outputs = both(inputs)  # (32, 128): forward, then backward
    ```

    Reference:
        - [Srivastava et al., 2015. Training Very Deep Networks](
            https://arxiv.org/abs/1507.06228)
        - [Zilly et al., 2017. Recurrent Highway Networks](
            https://arxiv.org/abs/1607.03474)
    """

    def __init__(
        self,
        units: int | list[int],
        num_layers: int | None = None,
        highway: str | None = "depth",
        gate_bias: float = -2.0,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        for name, value in (("go_backwards", go_backwards), ("unroll", unroll)):
            if not isinstance(value, bool):
                raise ValueError(
                    f"Received an invalid value for argument `{name}`, "
                    f"expected True or False, got {value!r}."
                )
        if isinstance(units, (list, tuple)):
            if not units:
                raise ValueError(
                    "Received an invalid value for argument `units`, expected "
                    "a positive integer or a non-empty list of them, got []."
                )
            for value in units:
                validation.check_positive_int("units", value)
            if num_layers is None:
                num_layers = len(units)
            validation.check_positive_int("num_layers", num_layers)
            if num_layers != len(units):
                raise ValueError(
                    f"Received {len(units)} values for argument `units` "
                    f"({list(units)}) but `num_layers={num_layers}`; give "
                    "one value per layer."
                )
            units = [int(u) for u in units]
        else:
            validation.check_positive_int("units", units)
            if num_layers is None:
                num_layers = 1
            validation.check_positive_int("num_layers", num_layers)
        if highway not in HIGHWAY_MODES:
            raise ValueError(
                "Received an invalid value for argument `highway`, expected "
                f"one of {HIGHWAY_MODES}, got {highway!r}."
            )
        validation.check_finite_float("gate_bias", gate_bias)
        validation.check_rate("dropout", dropout)
        validation.check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.highway = highway
        self.gate_bias = float(gate_bias)
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
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.unroll = unroll
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.layer_units = (
            list(units) if isinstance(units, list) else [units] * num_layers
        )
        self.cells = [
            WeightSharedRNNCell(
                layer_units,
                activation=self.activation,
                use_bias=use_bias,
                kernel_initializer=self.kernel_initializer,
                recurrent_initializer=self.recurrent_initializer,
                bias_initializer=self.bias_initializer,
                kernel_regularizer=self.kernel_regularizer,
                recurrent_regularizer=self.recurrent_regularizer,
                bias_regularizer=self.bias_regularizer,
                dtype=self.dtype_policy,
                name=f"cell_{i}",
            )
            for i, layer_units in enumerate(self.layer_units)
        ]

    @property
    def stateful(self) -> bool:
        # What `keras.layers.Bidirectional` reads: no state outlives a call.
        return False

    @property
    def time_gate(self) -> bool:
        return self.highway in ("time", "both")

    @property
    def depth_gate(self) -> bool:
        return self.highway in ("depth", "both")

    def build(self, input_shape):
        validation.check_sequence_shape(self.name, input_shape, None)
        self.input_features = input_shape[-1]
        if self.input_features is None:
            raise ValueError(
                f"`{self.name}` needs the feature size (the last axis) to be "
                f"known, got input shape {tuple(input_shape)}."
            )
        self._gates = []
        input_dim = self.input_features
        for i, (cell, units) in enumerate(zip(self.cells, self.layer_units)):
            cell.build((None, input_dim))
            gates = {}
            if self.time_gate:
                gates["carry_kernel"] = self._add_kernel(
                    f"carry_kernel_{i}", (input_dim, units)
                )
                gates["carry_recurrent_kernel"] = self.add_weight(
                    shape=(units, units),
                    name=f"carry_recurrent_kernel_{i}",
                    initializer=self.recurrent_initializer,
                    regularizer=self.recurrent_regularizer,
                )
                gates["carry_bias"] = self._add_gate_bias(
                    f"carry_bias_{i}", units
                )
            if self.depth_gate:
                gates["transform_kernel"] = self._add_kernel(
                    f"transform_kernel_{i}", (input_dim, units)
                )
                gates["transform_bias"] = self._add_gate_bias(
                    f"transform_bias_{i}", units
                )
                if input_dim != units:
                    gates["projection"] = self._add_kernel(
                        f"projection_{i}", (input_dim, units)
                    )
            self._gates.append(gates)
            input_dim = units

    def _add_kernel(self, name, shape):
        return self.add_weight(
            shape=shape,
            name=name,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )

    def _add_gate_bias(self, name, units):
        return self.add_weight(
            shape=(units,),
            name=name,
            initializer=keras.initializers.Constant(self.gate_bias),
        )

    def layer_weights(self, index: int) -> recurrence.LayerWeights:
        """The weights of stacked layer `index` as `recurrence.LayerWeights`.

        Args:
            index: the layer, from 0 (reads the inputs) to `num_layers - 1`.

        Returns:
            The layer's `recurrence.LayerWeights`; gates it lacks are None.
        """
        cell_weights = self.cells[index].layer_weights()
        return cell_weights._replace(**self._gates[index])

    def call(self, inputs, initial_state=None, mask=None, training=False):
        validation.check_sequence_shape(
            self.name, inputs.shape, self.input_features
        )
        if initial_state is not None:
            initial_state = self._check_initial_state(initial_state)
        if self.go_backwards:
            inputs = tf.reverse(inputs, [1])
            if mask is not None:
                mask = tf.reverse(mask, [1])
        batch = tf.shape(inputs)[0]
        dropout_masks = [None] * self.num_layers
        recurrent_dropout_masks = [None] * self.num_layers
        for i, units in enumerate(self.layer_units):
            if training and self.dropout > 0 and i > 0:
                dropout_masks[i] = self._dropout_mask(
                    batch, self.layer_units[i - 1], self.dropout
                )
            if training and self.recurrent_dropout > 0:
                recurrent_dropout_masks[i] = self._dropout_mask(
                    batch, units, self.recurrent_dropout
                )
        sequences, states, output = recurrence.run_stack(
            inputs,
            [
                recurrence.fuse_weights(self.layer_weights(i))
                for i in range(self.num_layers)
            ],
            self.activation,
            mask=mask,
            dropout_masks=dropout_masks,
            recurrent_dropout_masks=recurrent_dropout_masks,
            return_sequences=self.return_sequences,
            unroll=self.unroll,
            initial_states=initial_state,
        )
        if self.return_sequences:
            output = sequences
        if self.return_state:
            return [output, *states]
        return output

    def _check_initial_state(self, initial_state):
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        shapes = [tuple(s.shape) for s in initial_state]
        expected = [(None, u) for u in self.layer_units]
        if len(shapes) != self.num_layers or any(
            len(s) != 2 or s[1] != u for s, (_, u) in zip(shapes, expected)
        ):
            raise ValueError(
                f"`{self.name}` expects one initial state per layer, of "
                f"shapes {expected}; got shapes {shapes}."
            )
        return list(initial_state)

    def _dropout_mask(self, batch, size, rate):
        """One mask per sequence, the same at every step."""
        return keras.random.dropout(
            tf.ones(tf.stack([batch, size]), self.compute_dtype),
            rate,
            seed=self.seed_generator,
        )

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        if self.return_sequences:
            output_shape = (batch, time, self.layer_units[-1])
        else:
            output_shape = (batch, self.layer_units[-1])
        if self.return_state:
            return [output_shape] + [(batch, u) for u in self.layer_units]
        return output_shape

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * self.num_layers
        return output_mask

    def get_config(self):
        config = {
            "units": (
                self.units if isinstance(self.units, int) else list(self.units)
            ),
            "num_layers": self.num_layers,
            "highway": self.highway,
            "gate_bias": self.gate_bias,
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
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}
