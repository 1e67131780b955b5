"""Keras 3 recurrent layers for sequence classification."""

import keras as _keras

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_seqrnn needs the TensorFlow backend of Keras 3, got "
        f"KERAS_BACKEND={_keras.backend.backend()!r}. Set "
        "KERAS_BACKEND=tensorflow."
    )

from keras_seqrnn import data as data
from keras_seqrnn import datasets as datasets
from keras_seqrnn import recurrence as recurrence
from keras_seqrnn import reference as reference
from keras_seqrnn.highway_stacked_rnn import (
    HighwayStackedRNN as HighwayStackedRNN,
)
from keras_seqrnn.quantization_aware_classifier import (
    QuantizationAwareClassifier as QuantizationAwareClassifier,
)
from keras_seqrnn.sequence_classifier import (
    SequenceClassifier as SequenceClassifier,
)
from keras_seqrnn.sequence_classifier import (
    build_classifier as build_classifier,
)
from keras_seqrnn import training as training
from keras_seqrnn.version import __version__ as __version__
from keras_seqrnn.weight_shared_rnn_cell import (
    WeightSharedRNNCell as WeightSharedRNNCell,
)

__all__ = [
    "HighwayStackedRNN",
    "QuantizationAwareClassifier",
    "SequenceClassifier",
    "WeightSharedRNNCell",
    "build_classifier",
    "data",
    "datasets",
    "recurrence",
    "reference",
    "training",
    "__version__",
]
