"""`ExportReport`: what `to_tflite` wrote and how it compares with Keras."""

import dataclasses
import pathlib


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """The verification of one exported model against its Keras model.

    Attributes:
        path: the written file.
        config: the `ExportConfig`.
        size: the file's bytes.
        bytes_by_part: where the bytes go (see `model_file.ModelFileInfo`).
        weights_by_type: the weight bytes by dtype.
        ops: op name to count; no `Flex*` op is ever written.
        tensor_types: dtype name to tensor count.
        num_sequences: the sequences compared.
        agreement: the fraction whose top-1 class equals Keras' (LiteRT CPU).
        max_abs_diff: the largest |probability difference| with Keras.
        accuracy: the exported model's accuracy, when labels were given.
        keras_accuracy: the Keras model's accuracy on the same sequences.
        latency: seconds per batch-1 call on one CPU thread, if measured.
        gpu: None for other targets; for `"gpu"`, a dict with
            `fully_accelerated`, `agreement`, `max_abs_diff` (float16
            arithmetic by default) and `latency` on the LiteRT GPU
            accelerator, or `error` when it found no GPU.
        stream: None without a stream signature; else a dict:
            `chunkings` (`"chunk"`: chunks of K, `"one"`: one step at a
            time, `"uneven"`: chunks of changing sizes) to `agreement` and
            `max_abs_diff` with Keras' whole-sequence probabilities at
            each sequence's end, `latency` (seconds per call of one
            chunk, if measured) and, for int8, `drift`: `steps`,
            `streams`, `checkpoints`, `agreement` (the fraction of
            checkpoints, every K steps of a long stream, where the int8
            stream's top-1 class equals the float stream's) and
            `worst_checkpoint`.
        failures: the thresholds missed (float32: max |diff| < 1e-4;
            float16 / dynamic: agreement >= 99.5 %; gpu: fully
            accelerated). Empty when the export passed.
    """

    path: pathlib.Path
    config: object
    size: int
    bytes_by_part: dict
    weights_by_type: dict
    ops: dict
    tensor_types: dict
    num_sequences: int
    agreement: float
    max_abs_diff: float
    accuracy: float | None = None
    keras_accuracy: float | None = None
    latency: float | None = None
    gpu: dict | None = None
    stream: dict | None = None
    failures: tuple = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["path"] = str(self.path)
        values["config"] = dataclasses.asdict(self.config)
        values["failures"] = list(self.failures)
        return values

    def table(self) -> str:
        """The report as aligned `name  value` lines."""
        rows = [
            ("file", str(self.path)),
            ("target", self.config.target),
            ("quantization", str(self.config.quantization or "float32")),
            ("max_length", str(self.config.max_length or "any")),
            ("stream chunk", str(self.config.stream or "none")),
            ("batch_size", str(self.config.batch_size or "any")),
            ("size", _kib(self.size)),
            (
                "bytes",
                ", ".join(
                    f"{part} {_kib(n)}" for part, n in self.bytes_by_part.items()
                ),
            ),
            (
                "weights",
                ", ".join(
                    f"{t} {_kib(n)}" for t, n in self.weights_by_type.items()
                ),
            ),
            (
                "ops",
                ", ".join(f"{op} x{n}" for op, n in self.ops.items()),
            ),
            (
                "tensor dtypes",
                ", ".join(f"{t} x{n}" for t, n in self.tensor_types.items()),
            ),
            ("sequences compared", str(self.num_sequences)),
            ("top-1 agreement", f"{self.agreement:.2%}"),
            ("max |dprob|", f"{self.max_abs_diff:.2e}"),
        ]
        if self.accuracy is not None:
            rows.append(
                (
                    "accuracy",
                    f"{self.accuracy:.2%} (Keras {self.keras_accuracy:.2%})",
                )
            )
        if self.latency is not None:
            rows.append(("batch-1 latency", f"{self.latency * 1e6:.0f} us"))
        if self.gpu is not None:
            if "error" in self.gpu:
                rows.append(("gpu", self.gpu["error"]))
            else:
                rows += [
                    ("gpu fully accelerated", str(self.gpu["fully_accelerated"])),
                    ("gpu top-1 agreement", f"{self.gpu['agreement']:.2%}"),
                    ("gpu max |dprob|", f"{self.gpu['max_abs_diff']:.2e}"),
                ]
        if self.stream is not None:
            for chunking, values in self.stream["chunkings"].items():
                rows.append(
                    (
                        f"stream ({chunking})",
                        f"agreement {values['agreement']:.2%}, max |dprob| "
                        f"{values['max_abs_diff']:.2e}",
                    )
                )
            if self.stream.get("latency") is not None:
                rows.append(
                    (
                        "stream latency",
                        f"{self.stream['latency'] * 1e6:.0f} us per chunk of "
                        f"{self.config.stream}",
                    )
                )
            drift = self.stream.get("drift")
            if drift is not None:
                rows.append(
                    (
                        "int8 stream drift",
                        f"agreement with float {drift['agreement']:.2%} over "
                        f"{drift['checkpoints']} checkpoints of {drift['streams']} "
                        f"streams x {drift['steps']} steps (worst "
                        f"{drift['worst_checkpoint']:.2%})",
                    )
                )
        rows.append(
            ("verification", "; ".join(self.failures) or "passed")
        )
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"
