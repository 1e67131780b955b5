"""`SequenceClassifier`: the article's classifier, and `build_classifier`."""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_seqrnn import classifier_forward
from keras_seqrnn import framing
from keras_seqrnn import recurrence
from keras_seqrnn import training as training_lib
from keras_seqrnn import validation
from keras_seqrnn.highway_stacked_rnn import HighwayStackedRNN

POOLINGS = ("last", "mean", "last_mean")
# Stream state of a framed model: the steps of its partial frame.
PENDING = "pending"
PENDING_LENGTH = "pending_length"


@keras.saving.register_keras_serializable(package="keras_seqrnn")
class SequenceClassifier(keras.Model):
    """Lengths -> standardization -> frames -> `HighwayStackedRNN` -> `(V, B)`.

    The model takes padded sequences `(batch, time, num_features)`, time of
    any length, and returns class probabilities `(batch, num_classes)`,
    `softmax(f V + B)`. With `frame_length` k > 1 the recurrence reads k
    consecutive steps as one (`keras_seqrnn.framing.stack_frames`), so a
    long series becomes a short recurrence. The features `f` are, by
    default, the top layer's
    output at each sequence's last real step, `h_T`. With `pooling`, they
    are the mean of its outputs over the real steps, or both, `[h_T, mean]`.
    With `bidirectional`, a second stack of the same shape reads each
    sequence backwards (`HighwayStackedRNN(go_backwards=True)`, as
    `keras.layers.Bidirectional` builds it), and its features follow the
    forward stack's: `[f_forward, f_backward]`, the backward `h_T` being its
    output at the sequence's first step. Padding is the run of steps at the
    end of a sequence whose features are all `mask_value` (NaN by default,
    a value data cannot hold); every step before it is data, zeros
    included.

    Training is an explicit `tf.GradientTape` step
    (`keras_seqrnn.training.train_step`): cross entropy computed from the
    logits, averaged over the real sequences of the batch (a row that is all
    padding counts for nothing), gradients clipped to a global norm of
    `clip_norm` (a `compile` argument), and the pre-clip norm logged. Beside
    the compiled metrics, `fit` logs `loss`, `grad_norm` (the mean pre-clip
    global gradient norm over the epoch so far), `grad_norm_max` (its
    largest value) and `clipped` (the fraction of steps where clipping
    fired). Everything else of `fit`, `evaluate` and `predict` works as for
    any Keras model: callbacks, `class_weight`, `sample_weight`, metrics,
    `tf.distribute` strategies.

    Args:
        num_features: Positive integer, features per step, N.
        num_classes: Integer >= 2, the number of classes, K.
        units: Positive integer, or one per layer: the state size L.
            Default: `64`.
        num_layers: Positive integer, the number of stacked layers.
            Default: `len(units)` for a list, else `1`.
        highway: `"depth"`, `"time"`, `"both"` or `None`, as in
            `HighwayStackedRNN`. Default: `"depth"`.
        mask_value: Float, the padding value: the steps at the end of a
            sequence whose features all equal it are padding. Default:
            `nan`, what `keras_seqrnn.data.pad` pads with; with any other
            value a sequence that ends in it loses those steps.
        feature_mean: None or `num_features` floats subtracted from every
            real step before the RNN. Default: `None`.
        feature_variance: None or `num_features` positive floats; steps are
            divided by their square root. Give both or neither (see
            `keras_seqrnn.data.feature_statistics`). Default: `None`.
        dropout: Float in `[0, 1)`, dropout between stacked layers and before
            the output layer. Default: `0.0`.
        input_noise: Float >= 0, the standard deviation of Gaussian noise
            added to every real step in training, after standardization (so
            in units of each feature's standard deviation). Default: `0.0`.
        recurrent_dropout: Float in `[0, 1)`, variational dropout on the
            recurrent state. Default: `0.0`.
        gate_bias: Float, the initial bias of the highway gates.
            Default: `-2.0`.
        bidirectional: Boolean, whether a second stack reads the sequences
            backwards. Default: `False`.
        pooling: `"last"`, `"mean"` or `"last_mean"`: what the output layer
            reads of each stack's outputs. Default: `"last"`.
        frame_length: Positive integer, how many consecutive steps one
            recurrent step reads. Default: `1`.
        training_plan: None, or the settings the model was trained with
            (`keras_seqrnn.TrainingPlan.to_dict()`), kept with it for
            reference. Default: `None`.
        label_names: None or `num_classes` strings naming the classes, kept
            with the model for prediction. Default: `None`.
        seed: Integer, seed for dropout. Default: `None`.
        **kwargs: Base model keyword arguments, such as `name`.

    Call arguments:
        inputs: `(batch, time, num_features)` padded sequences.
        training: Python boolean, whether dropout applies. Default: `False`.

    Returns:
        `(batch, num_classes)` class probabilities.

    Masking:
        Each sequence's length comes from where its padding starts, on the
        raw inputs; a padded batch gives each sequence's unpadded result.
        Padding only ends a sequence: a step of zeros, or of `mask_value`,
        followed by data is data. Standardized, the padding becomes 0, and
        the last frame of a sequence is completed with those zeros. The
        mean is over the real steps (frames) only, and a sequence of length
        zero has zero features.

    Example:

    ```python
    model = keras_seqrnn.build_classifier(12, 9, units=64, num_layers=2)
    model.compile(keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                  clip_norm=1.0)
    x, lengths = keras_seqrnn.data.pad(sequences)  # NaN after each sequence
    model.fit(x, labels, epochs=10)  # logs loss, grad_norm, clipped, ...
    # What `seqrnn train` builds: both directions, last and mean outputs.
    model = keras_seqrnn.build_classifier(
        12, 9, units=64, num_layers=2, highway=None, bidirectional=True,
        pooling="last_mean",
    )
    ```

    Reference:
        - [Elman, 1990. Finding Structure in Time](
            https://doi.org/10.1207/s15516709cog1402_1)
        - [Schuster and Paliwal, 1997. Bidirectional Recurrent Neural
            Networks](https://doi.org/10.1109/78.650093)
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        units: int | list[int] = 64,
        num_layers: int | None = None,
        highway: str | None = "depth",
        mask_value: float = math.nan,
        feature_mean=None,
        feature_variance=None,
        dropout: float = 0.0,
        input_noise: float = 0.0,
        recurrent_dropout: float = 0.0,
        gate_bias: float = -2.0,
        bidirectional: bool = False,
        pooling: str = "last",
        label_names=None,
        seed: int | None = None,
        frame_length: int = 1,
        training_plan: dict | None = None,
        **kwargs,
    ):
        validation.check_positive_int("num_features", num_features)
        validation.check_positive_int("num_classes", num_classes)
        if num_classes < 2:
            raise ValueError(
                "Received an invalid value for argument `num_classes`, "
                f"expected an integer >= 2, got {num_classes!r}."
            )
        if not isinstance(mask_value, (int, float)) or math.isinf(mask_value):
            raise ValueError(
                "Received an invalid value for argument `mask_value`, "
                f"expected a finite float or nan, got {mask_value!r}."
            )
        validation.check_positive_int("frame_length", frame_length)
        validation.check_non_negative_float("input_noise", input_noise)
        if not isinstance(bidirectional, bool):
            raise ValueError(
                "Received an invalid value for argument `bidirectional`, "
                f"expected True or False, got {bidirectional!r}."
            )
        if pooling not in POOLINGS:
            raise ValueError(
                "Received an invalid value for argument `pooling`, expected "
                f"one of {POOLINGS}, got {pooling!r}."
            )
        feature_mean, feature_variance = _check_statistics(
            feature_mean, feature_variance, num_features
        )
        if label_names is not None:
            label_names = [str(name) for name in label_names]
            if len(label_names) != num_classes:
                raise ValueError(
                    "Received an invalid value for argument `label_names`, "
                    f"expected {num_classes} names, got {label_names!r}."
                )
        super().__init__(**kwargs)
        self.num_features = num_features
        self.num_classes = num_classes
        self.units = units
        self.num_layers = num_layers
        self.highway = highway
        self.mask_value = float(mask_value)
        self.feature_mean = feature_mean
        self.feature_variance = feature_variance
        self.dropout = dropout
        self.input_noise = float(input_noise)
        self.recurrent_dropout = recurrent_dropout
        self.gate_bias = gate_bias
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.label_names = label_names
        self.seed = seed
        self.frame_length = frame_length
        self.training_plan = training_plan
        self.clip_norm = None
        self.label_smoothing = 0.0
        self.standardization = None
        if feature_mean is not None:
            self.standardization = keras.layers.Normalization(
                mean=feature_mean,
                variance=feature_variance,
                name="standardization",
            )
        stack = dict(
            units=units,
            num_layers=num_layers,
            highway=highway,
            gate_bias=gate_bias,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            return_sequences=pooling != "last",
            seed=seed,
        )
        self.rnn = HighwayStackedRNN(**stack, name="rnn")
        self.backward_rnn = None
        if bidirectional:
            self.backward_rnn = HighwayStackedRNN(
                **stack, go_backwards=True, name="backward_rnn"
            )
        self.output_dropout = None
        if dropout:
            self.output_dropout = keras.layers.Dropout(
                dropout, seed=seed, name="output_dropout"
            )
        self.head = keras.layers.Dense(num_classes, name="logits")
        self._grad_norm = keras.metrics.Mean(name="grad_norm")
        self._grad_norm_max = _Maximum(name="grad_norm_max")
        self._clipped = keras.metrics.Mean(name="clipped")
        self._loss = keras.metrics.Mean(name="loss")

    def build(self, input_shape):
        validation.check_sequence_shape(self.name, input_shape, None)
        if self.rnn.built:
            return
        if self.standardization is not None:
            self.standardization.build(input_shape)
        framed = (None, None, self.num_features * self.frame_length)
        for rnn in self.stacks:
            rnn.build(framed)
        self.head.build((None, self.num_pooled_features))

    @property
    def stacks(self) -> list[HighwayStackedRNN]:
        """The forward stack, then the backward one if bidirectional."""
        return [self.rnn] + ([self.backward_rnn] if self.bidirectional else [])

    @property
    def num_pooled_features(self) -> int:
        """The size of the features the output layer reads."""
        per_stack = self.rnn.layer_units[-1] * len(self.pooling.split("_"))
        return per_stack * len(self.stacks)

    def sequence_lengths(self, inputs) -> tf.Tensor:
        """`(batch,)` int32: each sequence's steps before its padding."""
        if math.isnan(self.mask_value):
            padding = tf.reduce_all(tf.math.is_nan(inputs), axis=-1)
        else:
            padding = tf.reduce_all(tf.equal(inputs, self.mask_value), axis=-1)
        position = tf.range(1, tf.shape(inputs)[1] + 1)
        return tf.maximum(
            tf.reduce_max(tf.where(padding, 0, position[None, :]), axis=1), 0
        )

    def compute_mask(self, inputs, mask=None):
        """`(batch, time)` booleans: True on each sequence's real steps."""
        lengths = self.sequence_lengths(inputs)
        return tf.range(tf.shape(inputs)[1])[None, :] < lengths[:, None]

    def compute_logits(self, inputs, training=False):
        """`(batch, num_classes)` logits, `f V + B`."""
        validation.check_sequence_shape(
            self.name, inputs.shape, self.num_features
        )
        lengths = self.sequence_lengths(inputs)
        real = tf.range(tf.shape(inputs)[1])[None, :] < lengths[:, None]
        real = tf.cast(real, inputs.dtype)[:, :, None]
        x = tf.where(real > 0, inputs, tf.zeros_like(inputs))
        if self.standardization is not None:
            x = self.standardization(x) * real
        if training and self.input_noise:
            x = x + self._input_noise(x) * real
        x, lengths = framing.stack_frames(x, lengths, self.frame_length)
        mask = tf.range(tf.shape(x)[1])[None, :] < lengths[:, None]
        x = tf.concat(
            [
                self._pool(rnn(x, mask=mask, training=training), mask, rnn)
                for rnn in self.stacks
            ],
            axis=-1,
        )
        if self.output_dropout is not None:
            x = self.output_dropout(x, training=training)
        return self.head(x)

    def _pool(self, outputs, mask, rnn):
        if self.pooling == "last":
            return outputs
        # Outputs in reading order: a stack carries its last output through
        # padding, so the last one is the last real step's (or the first
        # step's, read backwards).
        pooled = []
        if "last" in self.pooling:
            pooled.append(outputs[:, -1])
        if "mean" in self.pooling:
            real = tf.cast(mask, outputs.dtype)
            if rnn.go_backwards:
                real = tf.reverse(real, [1])
            total = tf.reduce_sum(outputs * real[:, :, None], axis=1)
            count = tf.maximum(tf.reduce_sum(real, axis=1, keepdims=True), 1)
            pooled.append(total / count)
        return tf.concat(pooled, axis=-1)

    def _input_noise(self, x):
        # Stateless, keyed by (seed, optimizer step): a run resumed from a
        # checkpoint draws the very noise of an uninterrupted one.
        step = 0
        if getattr(self, "optimizer", None) is not None:
            step = self.optimizer.iterations
        seed = tf.stack(
            [tf.constant(self.seed or 0, tf.int64), tf.cast(step, tf.int64)]
        )
        return tf.random.stateless_normal(
            tf.shape(x), seed, stddev=self.input_noise, dtype=x.dtype
        )

    def call(self, inputs, training=False):
        logits = self.compute_logits(inputs, training)
        return keras.ops.softmax(training_lib.at_least_float32(logits))

    def initial_stream_state(self, batch_size: int) -> dict:
        """The state of `batch_size` new streams, for `stream`.

        Args:
            batch_size: Positive integer, the number of streams.

        Returns:
            A dict of zero tensors: each layer's state `h{i}`, the
            pooling's (`last`; `mean` and `frames`), and, with
            `frame_length > 1`, `pending` (`(batch_size, frame_length - 1,
            num_features)`, the steps of a partial frame) and
            `pending_length`. See
            `keras_seqrnn.classifier_forward.stream_state_shapes`.

        Raises:
            ValueError: the model is bidirectional.
        """
        self._check_streamable()
        validation.check_positive_int("batch_size", batch_size)
        return {
            name: tf.zeros((batch_size, *shape), dtype)
            for name, (shape, dtype) in self._stream_state_spec().items()
        }

    def _stream_state_spec(self) -> dict:
        """Name to `(shape without the batch, dtype)` of the stream state."""
        sizes = classifier_forward.stream_state_shapes(
            self.rnn.layer_units, self.pooling
        )
        spec = {
            name: (() if size is None else (size,), tf.as_dtype(dtype))
            for name, (size, dtype) in sizes.items()
        }
        if self.frame_length > 1:
            spec[PENDING] = (
                (self.frame_length - 1, self.num_features),
                tf.float32,
            )
            spec[PENDING_LENGTH] = ((), tf.int32)
        return spec

    def stream(self, chunk, state=None, reset=None):
        """Classifies streams chunk by chunk: the next steps of each stream.

        The explicit-state form of a stateful RNN: the state goes in and
        comes out, so several streams run in one batch, each resets on
        its own, and the same state feeds the exported `stream` signature
        (`export.to_tflite(..., stream=K)`). Keras' `stateful=True` keeps
        one state per batch row inside the layer, resets all rows at once
        and has no TFLite form. After each chunk the probabilities are the
        whole-sequence model's on everything streamed so far:
        `model(concatenated chunks)`, to float32 rounding.

        Args:
            chunk: `(batch, steps, num_features)`, the next steps of each
                stream; a stream with fewer steps pads its row at the end
                with `mask_value` (NaN by default, `data.pad`), and a row
                of padding leaves its stream unchanged.
            state: the state returned by the previous call, or None (new
                streams, `initial_stream_state`).
            reset: None, or `(batch,)` booleans: the streams that start
                over with this chunk.

        Returns:
            `(probabilities, state)`: `(batch, num_classes)`, and the state
            to pass with the next chunk.

        Raises:
            ValueError: the model is bidirectional (it reads each sequence
                backwards from its end: train it with
                `bidirectional=False`), or the chunk or state has another
                shape than the model's.

        Example:

        ```python
        state = None
        for chunk in np.array_split(sequence[None], 10, axis=1):
            probabilities, state = model.stream(chunk, state)
        ```
        """
        self._check_streamable()
        chunk = tf.convert_to_tensor(chunk, tf.float32)
        validation.check_sequence_shape(
            self.name, chunk.shape, self.num_features
        )
        if state is None:
            batch = chunk.shape[0]
            if batch is None:
                batch = tf.shape(chunk)[0]
            spec = self._stream_state_spec().items()
            state = {
                name: tf.zeros(tf.concat([[batch], shape], 0), dtype)
                for name, (shape, dtype) in spec
            }
        state = self._checked_stream_state(state, chunk.shape[0])
        if reset is not None:
            keep = tf.logical_not(tf.convert_to_tensor(reset, tf.bool))
            state = {
                name: tf.where(
                    tf.reshape(keep, [-1] + [1] * (len(v.shape) - 1)),
                    v,
                    tf.zeros_like(v),
                )
                for name, v in state.items()
            }
        x, lengths = self._zero_padded(chunk)
        if self.frame_length > 1:
            x, lengths = _after_pending(
                x, lengths, state[PENDING], state[PENDING_LENGTH]
            )
        logits, new_state = self._forward(
            x, lengths, state={
                name: v for name, v in state.items()
                if name not in (PENDING, PENDING_LENGTH)
            }
        )
        if self.frame_length > 1:
            new_state[PENDING], new_state[PENDING_LENGTH] = _pending(
                x, lengths, self.frame_length
            )
        probabilities = tf.nn.softmax(training_lib.at_least_float32(logits))
        return probabilities, new_state

    def _check_streamable(self):
        if self.bidirectional:
            raise ValueError(
                f"Model {self.name!r} is bidirectional: its backward stack "
                "reads each sequence from its end, so it cannot classify a "
                "stream before the stream ends. Train a forward-only model "
                "(`bidirectional=False`, `seqrnn train --no-bidirectional`) "
                "to stream."
            )

    def _checked_stream_state(self, state, batch):
        """The state as tensors, checked against this model's and the
        chunk's batch (None: unknown)."""
        spec = self._stream_state_spec()
        if not isinstance(state, dict) or set(state) != set(spec):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"Expected the stream state of model {self.name!r} "
                f"(keys {sorted(spec)}), got {found}; pass None to start "
                "new streams."
            )
        checked = {}
        for name, (shape, dtype) in spec.items():
            value = tf.convert_to_tensor(state[name])
            if (
                value.dtype != dtype
                or tuple(value.shape[1:]) != shape
                or (
                    value.shape[0] is not None
                    and batch is not None
                    and value.shape[0] != batch
                )
            ):
                raise ValueError(
                    f"Stream state {name!r} has shape {tuple(value.shape)} "
                    f"{value.dtype.name}; model {self.name!r} expects "
                    f"{(batch, *shape)} {dtype.name} for this chunk: a "
                    "state from another model or batch?"
                )
            checked[name] = value
        return checked

    def _zero_padded(self, inputs):
        """`(inputs with zeros for padding, lengths)`: the export's inputs."""
        inputs = tf.cast(inputs, tf.float32)
        mask = self.compute_mask(inputs)
        zeros = tf.zeros_like(inputs)
        return tf.where(mask[:, :, None], inputs, zeros), (
            self.sequence_lengths(inputs)
        )

    def _forward(self, sequences, lengths, quantize=None, state=None):
        """The export's forward pass on this model's weights
        (`classifier_forward.classifier_logits`)."""
        scale = shift = None
        if self.standardization is not None:
            scale, shift = classifier_forward.standardization_affine(
                self.standardization
            )
        weights = [
            [
                recurrence.fuse_weights(rnn.layer_weights(i))
                for i in range(rnn.num_layers)
            ]
            for rnn in self.stacks
        ]
        return classifier_forward.classifier_logits(
            sequences,
            lengths,
            weights[0],
            self.rnn.activation,
            tf.convert_to_tensor(self.head.kernel),
            tf.convert_to_tensor(self.head.bias),
            scale,
            shift,
            unroll=False,
            quantize=quantize,
            backward_weights=weights[1] if self.bidirectional else None,
            pooling=self.pooling,
            frame_length=self.frame_length,
            state=state,
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compile(
        self,
        optimizer="adam",
        loss=None,
        metrics=None,
        clip_norm: float | None = None,
        jit_compile: bool | None = None,
        label_smoothing: float = 0.0,
        **kwargs,
    ):
        """Configures training; `fit` then runs `training.train_step`.

        Args:
            optimizer: a Keras optimizer or its name. Default: `"adam"`.
            loss: must be None: the model computes its own masked cross
                entropy from the logits.
            metrics: metrics on `(labels, probabilities)`, such as
                `["accuracy"]`.
            clip_norm: None, or the largest global gradient norm: larger
                gradients are scaled down to it. Default: `None`.
            jit_compile: whether to compile the steps with XLA. Default
                (None): XLA, except under a `tf.distribute` strategy with
                several replicas, where XLA cannot reach the variables of
                the other devices on CPU. Keras' own default, `"auto"`,
                turns XLA off on machines without a GPU.
            label_smoothing: float in `[0, 1)`: the training target puts
                this much probability evenly on all classes
                (`training.classification_loss`); `evaluate` still reports
                the plain cross entropy. Default: `0.0`.
            **kwargs: the other arguments of `keras.Model.compile`.
        """
        if loss is not None:
            raise ValueError(
                "SequenceClassifier computes its own loss (cross entropy from "
                f"the logits, masked); expected `loss=None`, got {loss!r}."
            )
        if clip_norm is not None:
            validation.check_positive_float("clip_norm", clip_norm)
        self.clip_norm = clip_norm
        validation.check_rate("label_smoothing", label_smoothing)
        self.label_smoothing = float(label_smoothing)
        if jit_compile is None:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            jit_compile = replicas == 1
        super().compile(
            optimizer=optimizer,
            metrics=metrics,
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config["clip_norm"] = self.clip_norm
            config["label_smoothing"] = self.label_smoothing
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        own = [self._loss, self._grad_norm, self._grad_norm_max, self._clipped]
        return own + [
            m for m in super().metrics if m.name != "loss" and m not in own
        ]

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        result = training_lib.train_step(
            self,
            x,
            y,
            sample_weight,
            clip_norm=self.clip_norm,
            label_smoothing=self.label_smoothing,
        )
        self._grad_norm.update_state(result.grad_norm)
        self._grad_norm_max.update_state(result.grad_norm)
        self._clipped.update_state(result.clipped)
        return self._update_metrics(
            y, result.loss, result.logits, result.real, sample_weight
        )

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.compute_logits(x, training=False)
        real = training_lib.real_sequences(self.compute_mask(x))
        loss = training_lib.classification_loss(y, logits, real, sample_weight)
        logs = self._update_metrics(y, loss, logits, real, sample_weight)
        for tracker in (self._grad_norm, self._grad_norm_max, self._clipped):
            logs.pop(tracker.name)
        return logs

    def _update_metrics(self, y, loss, logits, real, sample_weight):
        self._loss.update_state(loss, sample_weight=tf.reduce_sum(real))
        probabilities = tf.nn.softmax(training_lib.at_least_float32(logits))
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, probabilities, sample_weight)
        return self.get_metrics_result()

    def get_config(self):
        config = {
            "num_features": self.num_features,
            "num_classes": self.num_classes,
            "units": (
                self.units if isinstance(self.units, int) else list(self.units)
            ),
            "num_layers": self.num_layers,
            "highway": self.highway,
            "mask_value": self.mask_value,
            "feature_mean": _as_list(self.feature_mean),
            "feature_variance": _as_list(self.feature_variance),
            "dropout": self.dropout,
            "input_noise": self.input_noise,
            "recurrent_dropout": self.recurrent_dropout,
            "gate_bias": self.gate_bias,
            "bidirectional": self.bidirectional,
            "pooling": self.pooling,
            "label_names": _as_list(self.label_names),
            "seed": self.seed,
            "frame_length": self.frame_length,
            "training_plan": self.training_plan,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_seqrnn")
class _Maximum(keras.metrics.Metric):
    """The largest value seen since the last reset."""

    def __init__(self, name="maximum", **kwargs):
        super().__init__(name=name, **kwargs)
        self.maximum = self.add_variable(
            shape=(), initializer="zeros", name="maximum"
        )

    def update_state(self, value):
        self.maximum.assign(keras.ops.maximum(self.maximum, value))

    def result(self):
        # A tensor, not the variable: a variable returned from the compiled
        # step reads as its initial value.
        return keras.ops.convert_to_tensor(self.maximum)


def _after_pending(x, lengths, pending, pending_length):
    """Each stream's pending steps, then its chunk's real steps, packed at
    the start of the rows: `(steps, lengths)`."""
    steps = tf.concat([pending, x], axis=1)
    width = tf.shape(steps)[1]
    held = pending.shape[1]
    position = tf.range(width)[None, :]
    real = (position < pending_length[:, None]) | (
        (position >= held) & (position < held + lengths[:, None])
    )
    order = tf.argsort(tf.where(real, position, position + width), axis=1)
    return tf.gather(steps, order, batch_dims=1), pending_length + lengths


def _pending(steps, lengths, frame_length):
    """The steps after each stream's last whole frame: `(pending,
    pending_length)`."""
    whole = lengths // frame_length * frame_length
    offset = tf.range(frame_length - 1)[None, :]
    index = tf.minimum(whole[:, None] + offset, tf.shape(steps)[1] - 1)
    left = lengths - whole
    pending = tf.gather(steps, index, batch_dims=1)
    pending = pending * tf.cast(offset < left[:, None], steps.dtype)[:, :, None]
    return pending, left


def _as_list(value):
    return None if value is None else list(value)


def _check_statistics(mean, variance, num_features):
    if (mean is None) != (variance is None):
        raise ValueError(
            "Give both `feature_mean` and `feature_variance`, or neither; got "
            f"feature_mean={mean!r}, feature_variance={variance!r}."
        )
    if mean is None:
        return None, None
    mean = np.asarray(mean, "float64")
    variance = np.asarray(variance, "float64")
    for name, value in (("feature_mean", mean), ("feature_variance", variance)):
        if value.shape != (num_features,) or not np.all(np.isfinite(value)):
            raise ValueError(
                f"Received an invalid value for argument `{name}`, expected "
                f"{num_features} finite values, got {value.tolist()!r}."
            )
    if np.any(variance <= 0):
        raise ValueError(
            "Received an invalid value for argument `feature_variance`, "
            f"expected positive values, got {variance.tolist()!r}."
        )
    return mean.tolist(), variance.tolist()


def build_classifier(
    num_features: int,
    num_classes: int,
    units: int | list[int] = 64,
    num_layers: int | None = None,
    highway: str | None = "depth",
    **kwargs,
) -> SequenceClassifier:
    """Builds a `SequenceClassifier`, ready to compile and train.

    Args:
        num_features: Positive integer, features per step, N.
        num_classes: Integer >= 2, the number of classes, K.
        units: Positive integer, or one per layer. Default: `64`.
        num_layers: Positive integer. Default: `len(units)` for a list,
            else `1`.
        highway: `"depth"`, `"time"`, `"both"` or `None`.
            Default: `"depth"`.
        **kwargs: the other arguments of `SequenceClassifier`
            (`mask_value`, `feature_mean`, `feature_variance`, `dropout`,
            `input_noise`, `recurrent_dropout`, `gate_bias`, `bidirectional`,
            `pooling`, `label_names`, `seed`, `frame_length`,
            `training_plan`, `name`).

    Returns:
        A built `SequenceClassifier` with sublayers `standardization` (None
        without statistics), `rnn` (the `HighwayStackedRNN`),
        `backward_rnn` (None unless bidirectional) and `head` (the dense
        layer `logits`, kernel V and bias B).

    Example:

    ```python
    model = keras_seqrnn.build_classifier(12, 9, units=64, num_layers=2)
    ```
    """
    model = SequenceClassifier(
        num_features,
        num_classes,
        units=units,
        num_layers=num_layers,
        highway=highway,
        **kwargs,
    )
    model.build((None, None, num_features))
    return model
