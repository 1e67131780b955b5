"""TFLite (LiteRT) export of keras_seqrnn models.

`to_tflite` writes a builtin-only, optionally quantized model for the CPU,
the GPU delegate or a phone, verified against Keras on the LiteRT runtime,
with a `stream` signature on request; `LiteRTModel` runs it, and its
`StreamSession` streams samples through it; `quantize_aware` prepares a trained model for
quantization-aware fine-tuning before an int8 export.

Importing this package does not import TensorFlow (`to_tflite`,
`quantize_aware` and the classes they need load it on first use): the LiteRT GPU accelerator
crashes when it starts in a process that has loaded TensorFlow.
"""

from export.child_process import ExportError
from export.export_config import PRESETS
from export.export_config import ExportConfig
from export.export_report import ExportReport
from export.litert_model import LiteRTModel
from export.model_file import TFLiteFileError
from export.stream_session import StreamSession

_NEED_TENSORFLOW = {
    "to_tflite": "export.tflite_export",
    "UnsupportedModelError": "export.frozen_model",
    "quantize_aware": "keras_seqrnn.quantization_aware_classifier",
    "QuantizationAwareClassifier": "keras_seqrnn.quantization_aware_classifier",
}

__all__ = [
    "PRESETS",
    "ExportConfig",
    "ExportError",
    "ExportReport",
    "LiteRTModel",
    "QuantizationAwareClassifier",
    "StreamSession",
    "TFLiteFileError",
    "UnsupportedModelError",
    "quantize_aware",
    "to_tflite",
]


def __getattr__(name):
    if name in _NEED_TENSORFLOW:
        import importlib

        return getattr(importlib.import_module(_NEED_TENSORFLOW[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
