"""`ExportConfig`: what `to_tflite` builds, and its named presets."""

import dataclasses

TARGETS = ("cpu", "gpu", "mobile")
QUANTIZATIONS = {
    "cpu": (None, "float16", "dynamic"),
    "gpu": (None,),
    "mobile": ("int8", "float16"),
}
IO_TYPES = ("float32", "int8")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The deployment target and quantization of an exported model.

    Args:
        target: `"cpu"`: a state-only `WHILE` loop, any batch size and any
            length in one model. `"gpu"`: unrolled over `max_length` steps
            with a static batch, float32, only ops the GPU delegate takes.
            `"mobile"`: unrolled and static like `"gpu"`, for full-integer
            or float16 phone runtimes. Default: `"cpu"`.
        quantization: for `"cpu"`: None (float32), `"float16"` (float16
            weights) or `"dynamic"` (int8 weights, float activations); for
            `"gpu"`: None; for `"mobile"`: `"int8"` (full integer, needs
            representative data or a quantization-aware model) or
            `"float16"`. Default: the target's first.
        max_length: the longest sequence an unrolled model takes; required
            for `"gpu"` and `"mobile"`, None for `"cpu"` (any length).
        batch_size: the static batch size of `"gpu"` and `"mobile"` models.
            Default: `1`.
        io_type: `"float32"` or, for `"int8"` only, `"int8"`: the type of
            `sequences` and `probabilities` at the model's edge (int8 with
            the scale and zero point stored in the model). Default:
            `"float32"`.
        stream: None, or the chunk length K of a `stream` signature beside
            the whole-sequence one (`export.LiteRTModel.stream`): for
            `"gpu"` and `"mobile"` it is unrolled over K steps with a
            static batch, so its size does not depend on the sequences'
            length; with `max_length=None` the file holds the stream
            signature alone and classifies sequences of any length. For
            `"cpu"` the signature takes chunks of any length (a loop) and
            K is the chunk its verification streams. The state is float32
            at the file's edge, also for int8 (`io_type` must be
            `"float32"`). Default: None.

    Example:

    ```python
    config = export.ExportConfig.preset("mobile-int8", max_length=29)
    report = export.to_tflite(model, "jv.tflite", config,
                              representative_data=train_sequences)
    ```
    """

    target: str = "cpu"
    quantization: str | None = None
    max_length: int | None = None
    batch_size: int | None = None
    io_type: str = "float32"
    stream: int | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(
                f"Unknown target {self.target!r}; expected one of "
                f"{', '.join(TARGETS)}."
            )
        allowed = QUANTIZATIONS[self.target]
        if self.quantization not in allowed:
            raise ValueError(
                f"Target {self.target!r} does not take quantization "
                f"{self.quantization!r}; expected one of "
                f"{', '.join(str(q) for q in allowed)}."
            )
        if self.io_type not in IO_TYPES:
            raise ValueError(
                f"Unknown io_type {self.io_type!r}; expected one of "
                f"{', '.join(IO_TYPES)}."
            )
        if self.io_type == "int8" and self.quantization != "int8":
            raise ValueError(
                "io_type='int8' needs quantization='int8', got "
                f"{self.quantization!r}."
            )
        if self.stream is not None:
            _check_positive("stream", self.stream)
            if self.io_type != "float32":
                raise ValueError(
                    "A stream signature keeps float32 inputs and outputs "
                    "(its state crosses calls at the file's edge); expected "
                    f"io_type='float32' with stream, got {self.io_type!r}."
                )
        if self.target == "cpu":
            for name in ("max_length", "batch_size"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"Target 'cpu' takes any {name.split('_')[-1]}; "
                        f"expected {name}=None, got {getattr(self, name)!r}."
                    )
            return
        if self.max_length is None and self.stream is None:
            raise ValueError(
                f"Target {self.target!r} is unrolled over a fixed number of "
                "steps: give max_length, the longest sequence it must take "
                "(or stream=K alone, for a file that streams chunks of K "
                "steps)."
            )
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", 1)
        for name in ("max_length", "batch_size"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))

    @property
    def whole(self) -> bool:
        """Whether the file has the whole-sequence signature."""
        return self.target == "cpu" or self.max_length is not None

    @property
    def chunk_length(self) -> int | None:
        """The stream signature's static chunk length (None: any)."""
        return None if self.target == "cpu" else self.stream

    @property
    def unrolled(self) -> bool:
        return self.target != "cpu"

    @property
    def name(self) -> str:
        """`target` or `target-quantization`, as in `PRESETS`."""
        if self.quantization is None:
            return self.target
        return f"{self.target}-{self.quantization}"

    @classmethod
    def preset(cls, name: str, **overrides) -> "ExportConfig":
        """A named preset (see `PRESETS`), with some fields overridden.

        Args:
            name: a key of `PRESETS`, such as `"cpu"` or `"mobile-int8"`.
            **overrides: values of the other `ExportConfig` fields, such
                as `max_length` (required for `"gpu"` and `"mobile-*"`).

        Returns:
            An `ExportConfig`.
        """
        if name not in PRESETS:
            raise ValueError(
                f"Unknown preset {name!r}; expected one of "
                f"{', '.join(PRESETS)}."
            )
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"Unknown export option(s) {', '.join(sorted(unknown))}; "
                "expected some of "
                f"{', '.join(f.name for f in dataclasses.fields(cls))}."
            )
        return cls(**{**PRESETS[name], **overrides})


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Expected {name} to be a positive integer, got {value!r}."
        )


PRESETS = {
    "cpu": {"target": "cpu"},
    "cpu-float16": {"target": "cpu", "quantization": "float16"},
    "cpu-dynamic": {"target": "cpu", "quantization": "dynamic"},
    "gpu": {"target": "gpu"},
    "mobile-int8": {"target": "mobile", "quantization": "int8"},
    "mobile-float16": {"target": "mobile", "quantization": "float16"},
}
