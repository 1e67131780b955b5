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
from keras_seqrnn import streaming as streaming
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
from keras_seqrnn.recipe import FitResult as FitResult
from keras_seqrnn.recipe import TrainingDivergedError as TrainingDivergedError
from keras_seqrnn.recipe import fit_classifier as fit_classifier
from keras_seqrnn.saving import ModelFileError as ModelFileError
from keras_seqrnn.saving import load_classifier as load_classifier
from keras_seqrnn.training_plan import DataFingerprint as DataFingerprint
from keras_seqrnn.training_plan import TrainingPlan as TrainingPlan
from keras_seqrnn.training_plan import plan_training as plan_training
from keras_seqrnn.version import __version__ as __version__
from keras_seqrnn.weight_shared_rnn_cell import (
    WeightSharedRNNCell as WeightSharedRNNCell,
)

__all__ = [
    "DataFingerprint",
    "FitResult",
    "HighwayStackedRNN",
    "ModelFileError",
    "QuantizationAwareClassifier",
    "SeqRNNClassifier",
    "SequenceClassifier",
    "TrainingDivergedError",
    "TrainingPlan",
    "WeightSharedRNNCell",
    "build_classifier",
    "fit_classifier",
    "load_classifier",
    "plan_training",
    "data",
    "datasets",
    "recurrence",
    "reference",
    "streaming",
    "training",
    "__version__",
]


def __getattr__(name):
    # scikit-learn is an extra (`pip install keras-seqrnn[sklearn]`): the
    # estimator imports it on first use only.
    if name == "SeqRNNClassifier":
        from keras_seqrnn.estimator import SeqRNNClassifier

        return SeqRNNClassifier
    raise AttributeError(f"module 'keras_seqrnn' has no attribute {name!r}")
