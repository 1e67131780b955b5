"""`LiteRTModel`: runs an exported classifier on the LiteRT CPU or GPU."""

import os
import pathlib
import sys
import time

import numpy as np
from ai_edge_litert import compiled_model
from ai_edge_litert import interpreter as interpreter_lib

from export import model_file
from export import stream_session

SIGNATURE = "serving_default"
SEQUENCES = "sequences"
LENGTHS = "lengths"
PROBABILITIES = "probabilities"
STREAM_SIGNATURE = "stream"
CHUNK = "chunk"
COUNT = "count"
ACCELERATORS = ("cpu", "gpu")
# Rows per call for models with a dynamic batch.
_CHUNK = 256
VULKAN_HINT = (
    "The LiteRT GPU accelerator found no GPU adapter. On a machine without a "
    "GPU it runs on Mesa's software Vulkan driver: install libvulkan1 and "
    "mesa-vulkan-drivers >= 25 (Debian 12: from bookworm-backports; "
    "`tools/install_vulkan.sh` does it)."
)


class LiteRTModel:
    """An exported `keras_seqrnn` classifier on the `ai_edge_litert` runtime.

    Takes what the Keras model takes, variable-length sequences, and returns
    its probabilities: the input standardization is inside the model, and
    the runner pads, splits batches to the model's static batch size and
    checks lengths against its `max_length`.

    Args:
        path: a `.tflite` file written by `export.to_tflite`.
        accelerator: `"cpu"` (the LiteRT interpreter with XNNPACK) or
            `"gpu"` (the LiteRT GPU accelerator through `CompiledModel`; the
            model must be a `target="gpu"` export). Default: `"cpu"`.
        num_threads: CPU threads, or None for the runtime's default.
        gpu_enforce_f32: on the GPU, compute in float32 rather than the
            default float16. Default: `False`.

    Example:

    ```python
    runner = export.LiteRTModel("jv.tflite")
    probabilities = runner.predict([seq_a, seq_b])  # (2, num_classes)
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike,
        accelerator: str = "cpu",
        num_threads: int | None = None,
        gpu_enforce_f32: bool = False,
    ):
        if accelerator not in ACCELERATORS:
            raise ValueError(
                f"Unknown accelerator {accelerator!r}; expected one of "
                f"{', '.join(ACCELERATORS)}."
            )
        self.path = pathlib.Path(path)
        self.accelerator = accelerator
        content = self._content = self.path.read_bytes()
        self._num_threads = num_threads
        try:
            self.metadata = model_file.read_metadata(content) or {}
        except model_file.TFLiteFileError as error:
            raise model_file.TFLiteFileError(f"{self.path}: {error}") from None
        if accelerator == "cpu":
            try:
                self._interpreter = interpreter_lib.Interpreter(
                    model_content=content, num_threads=num_threads
                )
                signatures = self._interpreter.get_signature_list()
            # A corrupt flatbuffer fails anywhere in LiteRT's reader.
            except Exception as error:  # noqa: BLE001
                raise model_file.TFLiteFileError(
                    f"{self.path}: LiteRT cannot read it ({type(error).__name__}: "
                    f"{_first_line(error)})."
                ) from None
            self.fully_accelerated = True
        else:
            self._compiled = _compile_gpu(self.path, gpu_enforce_f32)
            signatures = self._compiled.get_signature_list()
            self.fully_accelerated = self._compiled.is_fully_accelerated()
        self._check_signatures(signatures)
        self.has_whole = SIGNATURE in signatures
        self.has_stream = STREAM_SIGNATURE in signatures
        self.frame_length = int(self.metadata.get("frame_length") or 1)
        if self.has_stream:
            self._init_stream(signatures[STREAM_SIGNATURE])
            self.batch_size = self.stream_batch_size
            self.max_length = None
        if self.has_whole:
            self._init_whole()
        self.label_names = self.metadata.get("label_names")

    def _init_whole(self):
        if self.accelerator == "cpu":
            runner = self._interpreter.get_signature_runner(SIGNATURE)
            details = runner.get_input_details()
            output = runner.get_output_details()[PROBABILITIES]
            # The tensors directly, not through the signature runner: a
            # third less Python per call on the smallest models.
            self._tensors = {
                name: details[name]["index"] for name in (SEQUENCES, LENGTHS)
            }
            self._output_tensor = output["index"]
            self._input_shape = None
        else:
            details = self._compiled.get_input_tensor_details(SIGNATURE)
            output = self._compiled.get_output_tensor_details(SIGNATURE)[
                PROBABILITIES
            ]
        sequences = details[SEQUENCES]
        shape = _shape(sequences)
        self.batch_size = shape[0] if shape[0] > 0 else None
        self.max_length = shape[1] if shape[1] > 0 else None
        self.num_features = shape[2]
        self.num_classes = int(output["shape"][-1])
        self._input_quantization = _quantization(sequences)
        self._output_quantization = _quantization(output)
        if self.accelerator == "gpu":
            index = self._compiled.get_signature_index(SIGNATURE)
            self._inputs = self._compiled.create_input_buffers(index)
            self._outputs = self._compiled.create_output_buffers(index)
            self._input_names = self._compiled.get_signature_list()[SIGNATURE][
                "inputs"
            ]

    def _init_stream(self, signature):
        if self.accelerator == "cpu":
            # An interpreter of its own: a signature runner holds its
            # interpreter, which then refuses the whole-sequence path's
            # resizing.
            stream_interpreter = interpreter_lib.Interpreter(
                model_content=self._content, num_threads=self._num_threads
            )
            self._stream_runner = stream_interpreter.get_signature_runner(
                STREAM_SIGNATURE
            )
            details = self._stream_runner.get_input_details()
            outputs = self._stream_runner.get_output_details()
        else:
            details = self._compiled.get_input_tensor_details(STREAM_SIGNATURE)
            outputs = self._compiled.get_output_tensor_details(STREAM_SIGNATURE)
            self._stream_inputs = {
                name: self._compiled.create_input_buffer_by_name(
                    STREAM_SIGNATURE, name
                )
                for name in signature["inputs"]
            }
            self._stream_outputs = {
                name: self._compiled.create_output_buffer_by_name(
                    STREAM_SIGNATURE, name
                )
                for name in signature["outputs"]
            }
        chunk = _shape(details[CHUNK])
        self.stream_batch_size = chunk[0] if chunk[0] > 0 else None
        self.chunk_length = chunk[1] if chunk[1] > 0 else None
        self.num_features = chunk[2]
        self.num_classes = int(outputs[PROBABILITIES]["shape"][-1])
        self.state_spec = {
            name: (tuple(_shape(details[name])[1:]), np.dtype(details[name]["dtype"]))
            for name in signature["inputs"]
            if name not in (CHUNK, COUNT)
        }

    def _check_signatures(self, signatures):
        whole = {"inputs": {SEQUENCES, LENGTHS}, "outputs": {PROBABILITIES}}
        found_whole = signatures.get(SIGNATURE)
        found_stream = signatures.get(STREAM_SIGNATURE)
        whole_ok = found_whole is not None and all(
            set(found_whole[key]) == names for key, names in whole.items()
        )
        stream_ok = found_stream is not None and (
            {CHUNK, COUNT} <= set(found_stream["inputs"])
            and set(found_stream["outputs"])
            == set(found_stream["inputs"]) - {CHUNK, COUNT} | {PROBABILITIES}
        )
        if (found_whole is not None and not whole_ok) or (
            found_stream is not None and not stream_ok
        ) or not (whole_ok or stream_ok):
            raise model_file.TFLiteFileError(
                f"{self.path} is not a keras_seqrnn export: expected a "
                f"{SIGNATURE!r} signature with inputs sequences, lengths and "
                f"output probabilities and/or a {STREAM_SIGNATURE!r} "
                f"signature with inputs chunk, count and the state, found "
                f"{signatures}."
            )

    def predict(self, sequences, lengths=None) -> np.ndarray:
        """Class probabilities, `(num_sequences, num_classes)` float32.

        Args:
            sequences: a list of `(length, num_features)` arrays, or a padded
                `(batch, time, num_features)` array.
            lengths: for a padded array, each sequence's length; None takes
                the steps up to the last one that is not all NaN (the
                padding of `keras_seqrnn.data.pad`).
        """
        padded, lengths = prepare_sequences(
            sequences, lengths, self.num_features, self.max_length
        )
        if not self.has_whole:
            return self._stream_padded(padded, lengths, None)
        rows = self.batch_size or _CHUNK
        results = []
        for start in range(0, len(padded), rows):
            chunk = padded[start : start + rows]
            chunk_lengths = lengths[start : start + rows]
            results.append(self._run(chunk, chunk_lengths)[: len(chunk)])
        if not results:
            return np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(results)

    def stream_predict(
        self, sequences, lengths=None, chunk_lengths=None
    ) -> np.ndarray:
        """Class probabilities of whole sequences, streamed in chunks
        through the `stream` signature (`stream`), `(num_sequences,
        num_classes)`.

        Args:
            sequences, lengths: as in `predict`.
            chunk_lengths: None (chunks of the file's `chunk_length`, or
                whole sequences where it takes any), an int, or a list of
                the steps pushed at a time, cycled until each sequence ends.
        """
        self._require_stream()
        padded, lengths = prepare_sequences(
            sequences, lengths, self.num_features
        )
        return self._stream_padded(padded, lengths, chunk_lengths)

    def _stream_padded(self, padded, lengths, chunk_lengths):
        rows = self.stream_batch_size or _CHUNK
        results = []
        for start in range(0, len(padded), rows):
            part = padded[start : start + rows]
            part_lengths = lengths[start : start + rows]
            session = self.stream(len(part))
            sizes = _chunk_sizes(chunk_lengths, int(part_lengths.max(initial=0)))
            position = 0
            probabilities = session.probabilities
            for size in sizes:
                end = np.minimum(position + size, part_lengths)
                begin = np.minimum(position, part_lengths)
                probabilities = session.push(
                    [s[b:e] for s, b, e in zip(part, begin, end)]
                )
                position += size
            results.append(probabilities)
        if not results:
            return np.zeros((0, self.num_classes), np.float32)
        return np.concatenate(results)

    def initial_state(self, num_streams: int = 1) -> dict:
        """The zero state of `num_streams` new streams: name to array."""
        self._require_stream()
        return {
            name: np.zeros((num_streams, *shape), dtype)
            for name, (shape, dtype) in self.state_spec.items()
        }

    def stream(self, num_streams: int = 1) -> "stream_session.StreamSession":
        """A streaming session: push samples, get probabilities, reset.

        Args:
            num_streams: how many streams the session carries.

        Returns:
            A `StreamSession` (see `export.StreamSession`).
        """
        self._require_stream()
        return stream_session.StreamSession(self, num_streams)

    def stream_step(self, chunk, count, state) -> tuple[np.ndarray, dict]:
        """One call of the `stream` signature, the state explicit.

        Args:
            chunk: `(batch, steps, num_features)` float32; `steps` is the
                file's `chunk_length` where it has one (at most it
                otherwise).
            count: `(batch,)` int32, each stream's real steps in the chunk.
            state: the state before the chunk (`initial_state`, or what the
                previous call returned).

        Returns:
            `(probabilities, state)`. The state advances by whole frames
            (see `export.StreamSession`, which re-feeds a partial one).

        Raises:
            ValueError: a chunk, count or state of another shape or dtype
                (a state from another model), or a count out of range.
        """
        self._require_stream()
        chunk = np.asarray(chunk, np.float32)
        count = np.asarray(count)
        batch = self.stream_batch_size or len(chunk)
        steps = self.chunk_length or chunk.shape[1]
        if chunk.ndim != 3 or chunk.shape != (batch, steps, self.num_features):
            raise ValueError(
                f"Expected a chunk of shape ({batch}, {steps}, "
                f"{self.num_features}), got {chunk.shape}."
            )
        if count.shape != (batch,) or not np.issubdtype(count.dtype, np.integer):
            raise ValueError(
                f"Expected count as ({batch},) integers, got {count.dtype} "
                f"{count.shape}."
            )
        if np.any(count < 0) or np.any(count > steps):
            raise ValueError(
                f"Each count must lie in [0, {steps}], got {count.tolist()}."
            )
        _check_state(state, self.state_spec, batch)
        inputs = {CHUNK: chunk, COUNT: count.astype(np.int32), **state}
        if self.accelerator == "cpu":
            outputs = self._stream_runner(**inputs)
        else:
            for name, buffer in self._stream_inputs.items():
                buffer.write(np.ascontiguousarray(inputs[name]))
            self._compiled.run_by_name(
                STREAM_SIGNATURE, self._stream_inputs, self._stream_outputs
            )
            outputs = {}
            for name, buffer in self._stream_outputs.items():
                if name == PROBABILITIES:
                    shape, dtype = (self.num_classes,), np.float32
                else:
                    shape, dtype = self.state_spec[name]
                outputs[name] = buffer.read(
                    batch * int(np.prod(shape)), dtype
                ).reshape(batch, *shape)
        probabilities = np.array(outputs.pop(PROBABILITIES), np.float32)
        return probabilities, {
            name: np.array(outputs[name], dtype)
            for name, (_, dtype) in self.state_spec.items()
        }

    def _require_stream(self):
        if not self.has_stream:
            raise ValueError(
                f"{self.path} has no {STREAM_SIGNATURE!r} signature: export "
                "it with `stream=K` (`seqrnn export --stream K`) to stream."
            )

    def predict_labels(self, sequences, lengths=None) -> list:
        """The most probable class of each sequence, by name if the model
        stores names, else by index."""
        indices = self.predict(sequences, lengths).argmax(axis=-1)
        if self.label_names is None:
            return [int(i) for i in indices]
        return [self.label_names[i] for i in indices]

    def latency(self, sequence, runs: int = 200, warmup: int = 20) -> float:
        """The median seconds the model takes on a batch of one sequence,
        its inputs already padded (and quantized for int8 inputs)."""
        if not self.has_whole:
            raise ValueError(
                f"{self.path} holds only the stream signature: time "
                "`stream_step` on a chunk instead."
            )
        padded, lengths = prepare_sequences(
            [sequence], None, self.num_features, self.max_length
        )
        inputs = self._model_inputs(padded, lengths)
        return median_seconds(lambda: self._invoke(*inputs), runs, warmup)

    def _run(self, padded, lengths):
        probabilities = self._invoke(*self._model_inputs(padded, lengths))
        return _dequantize(probabilities, self._output_quantization)

    def _model_inputs(self, padded, lengths):
        batch = self.batch_size or len(padded)
        steps = self.max_length or max(padded.shape[1], 1)
        x = np.zeros((batch, steps, self.num_features), np.float32)
        x[: len(padded), : padded.shape[1]] = padded
        n = np.zeros(batch, np.int32)
        n[: len(lengths)] = lengths
        return _quantize(x, self._input_quantization), n

    def _invoke(self, x, n):
        if self.accelerator == "cpu":
            interpreter = self._interpreter
            if x.shape != self._input_shape:
                interpreter.resize_tensor_input(self._tensors[SEQUENCES], x.shape)
                interpreter.resize_tensor_input(self._tensors[LENGTHS], n.shape)
                interpreter.allocate_tensors()
                self._input_shape = x.shape
            interpreter.set_tensor(self._tensors[SEQUENCES], x)
            interpreter.set_tensor(self._tensors[LENGTHS], n)
            interpreter.invoke()
            return interpreter.get_tensor(self._output_tensor)
        for name, buffer in zip(self._input_names, self._inputs):
            buffer.write(x if name == SEQUENCES else n)
        self._compiled.run_by_index(0, self._inputs, self._outputs)
        dtype = np.int8 if self._output_quantization else np.float32
        return self._outputs[0].read(len(n) * self.num_classes, dtype).reshape(
            len(n), self.num_classes
        )


def median_seconds(call, runs: int = 200, warmup: int = 20) -> float:
    """The median wall-clock seconds of `call()` over `runs` calls, after
    `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def prepare_sequences(sequences, lengths, num_features, max_length=None):
    """Checks and pads sequences: `(padded float32, lengths int32)`.

    Args:
        sequences: a list of `(length, num_features)` arrays, or a padded
            `(batch, time, num_features)` array.
        lengths: None or, for a padded array, `(batch,)` integer lengths;
            None takes each sequence's length from its padding, the steps
            at its end that are all NaN (what `keras_seqrnn.data.pad`
            writes, and where the Keras classifier's padding starts).
        num_features: the features per step the model takes.
        max_length: None, or the longest sequence the model takes.

    Returns:
        `(padded, lengths)`, the padding zero: the model reads only each
        sequence's first `length` steps.

    Raises:
        ValueError: a wrong rank or feature count, a length that is not an
            integer in range, a value that is not finite before a
            sequence's end, or a sequence longer than `max_length` (never
            truncated).
    """
    if isinstance(sequences, np.ndarray) and sequences.ndim != 3:
        raise ValueError(
            "Expected sequences as a list of (time, features) arrays or a "
            "padded (batch, time, features) array, got an array of shape "
            f"{sequences.shape}."
        )
    if isinstance(sequences, np.ndarray):
        padded = np.array(sequences, np.float32)
        if lengths is None:
            real = ~np.all(np.isnan(padded), axis=-1)
            lengths = np.where(
                real.any(axis=1),
                padded.shape[1] - np.argmax(real[:, ::-1], axis=1),
                0,
            )
        lengths = np.asarray(lengths)
        if lengths.shape != (len(padded),):
            raise ValueError(
                f"Expected {len(padded)} lengths for a batch of "
                f"{len(padded)}, got shape {lengths.shape}."
            )
        if not (
            np.issubdtype(lengths.dtype, np.integer)
            or np.array_equal(lengths, np.round(lengths))
        ):
            raise ValueError(
                f"Lengths must be whole numbers of steps, got {lengths}."
            )
        if np.any(lengths < 0) or np.any(lengths > padded.shape[1]):
            raise ValueError(
                f"Lengths must lie in [0, {padded.shape[1]}], the padded "
                f"time axis; got {lengths.min()} to {lengths.max()}."
            )
    else:
        if lengths is not None:
            raise ValueError(
                "Give lengths only with a padded array; a list of sequences "
                "carries its own."
            )
        arrays = [np.asarray(s, np.float32) for s in sequences]
        for i, array in enumerate(arrays):
            if array.ndim != 2:
                raise ValueError(
                    f"Sequence {i} has shape {array.shape}; expected "
                    f"(time, {num_features})."
                )
        lengths = np.array([len(a) for a in arrays], np.int64)
        steps = int(lengths.max()) if len(arrays) else 0
        features = arrays[0].shape[1] if arrays else num_features
        padded = np.zeros((len(arrays), steps, features), np.float32)
        for i, array in enumerate(arrays):
            if array.shape[1] != features:
                raise ValueError(
                    f"Sequence {i} has {array.shape[1]} features, sequence 0 "
                    f"has {features}."
                )
            padded[i, : len(array)] = array
    if padded.shape[-1] != num_features:
        raise ValueError(
            f"The model takes {num_features} features per step, got "
            f"{padded.shape[-1]}."
        )
    real = np.arange(padded.shape[1])[None, :] < lengths[:, None]
    padded[~real] = 0.0
    bad = np.argwhere(~np.isfinite(padded).all(axis=-1))
    if len(bad):
        row, step = (int(i) for i in bad[0])
        raise ValueError(
            f"Sequence {row} has a NaN or infinite value at step {step}, "
            f"before its end (length {int(lengths[row])})."
        )
    if max_length is not None and len(lengths) and lengths.max() > max_length:
        longest = int(np.argmax(lengths))
        raise ValueError(
            f"Sequence {longest} has {int(lengths[longest])} steps, more than "
            f"this model's max_length {max_length}; export with a larger "
            "max_length (sequences are never truncated)."
        )
    steps = int(lengths.max()) if len(lengths) else 0
    return padded[:, :steps], lengths.astype(np.int32)


def _shape(details):
    return [int(d) for d in details.get("shape_signature", [])] or [
        int(d) for d in details["shape"]
    ]


def _chunk_sizes(chunk_lengths, longest):
    """The steps of each push until `longest` steps are pushed."""
    if chunk_lengths is None or isinstance(chunk_lengths, (int, np.integer)):
        size = int(chunk_lengths or max(longest, 1))
        return [size] * -(-longest // size)
    sizes, total = [], 0
    cycle = [int(n) for n in chunk_lengths]
    while total < longest:
        sizes.append(cycle[len(sizes) % len(cycle)])
        total += sizes[-1]
    return sizes


def _check_state(state, spec, batch):
    if not isinstance(state, dict) or set(state) != set(spec):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"Expected a stream state with keys {sorted(spec)}, got {found}: "
            "a state from another model?"
        )
    for name, (shape, dtype) in spec.items():
        value = np.asarray(state[name])
        if value.shape != (batch, *shape) or value.dtype != dtype:
            raise ValueError(
                f"Stream state {name!r} has shape {value.shape} "
                f"{value.dtype}; this model expects {(batch, *shape)} "
                f"{np.dtype(dtype)}: a state from another model?"
            )


def _compile_gpu(path, enforce_f32):
    if "tensorflow" in sys.modules:
        # Measured with Mesa's llvmpipe: creating the accelerator after
        # TensorFlow is loaded segfaults; before, it works.
        raise RuntimeError(
            "Create the GPU LiteRTModel in a process that has not imported "
            "TensorFlow (or before importing it): the LiteRT GPU "
            "accelerator crashes when it starts after TensorFlow is loaded. "
            "export.to_tflite runs its GPU check in such a child process."
        )
    options = compiled_model.Options(
        hardware_accelerators=compiled_model.HardwareAccelerator.GPU,
        gpu_options=compiled_model.GpuOptions(enforce_f32=enforce_f32),
    )
    try:
        # from_file: from_buffer does not keep the bytes alive.
        return compiled_model.CompiledModel.from_file(
            str(path), options=options
        )
    except RuntimeError as error:
        raise RuntimeError(f"{VULKAN_HINT} ({error})") from None


def _quantization(details):
    params = details.get("quantization_parameters") or {}
    scales = params.get("scales")
    if details.get("dtype") in (np.int8, "int8") and scales is not None:
        return float(scales[0]), int(params["zero_points"][0])
    return None


def _quantize(x, quantization):
    if quantization is None:
        return x
    scale, zero_point = quantization
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def _dequantize(y, quantization):
    if quantization is None:
        return np.asarray(y, np.float32)
    scale, zero_point = quantization
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def _first_line(error):
    return (str(error).strip().splitlines() or [""])[0]
