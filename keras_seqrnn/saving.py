"""Loading saved classifiers, with one clear error for unreadable files."""

import os
import pathlib
import zipfile

import keras

from keras_seqrnn.sequence_classifier import SequenceClassifier


class ModelFileError(ValueError):
    """A file that is not a readable `.keras` classifier; the message names it."""


def load_classifier(path: str | os.PathLike) -> SequenceClassifier:
    """Loads a `SequenceClassifier` saved with `model.save(path)`.

    Args:
        path: a `.keras` file.

    Returns:
        The classifier (a `QuantizationAwareClassifier` for the model of
        `export.quantize_aware`).

    Raises:
        ModelFileError: the file is missing, is not a `.keras` zip archive
            (truncated, or another format), Keras cannot load it, or it
            holds another kind of model. The message names the file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file.")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path}: not a .keras file (not a zip archive: truncated, or "
            "another format)."
        )
    try:
        model = keras.saving.load_model(path)
    # A damaged archive fails anywhere in Keras' loader (zip, JSON, HDF5).
    except Exception as error:  # noqa: BLE001
        line = (str(error).strip().splitlines() or [""])[0]
        raise ModelFileError(
            f"{path}: Keras cannot load it ({type(error).__name__}: {line})."
        ) from None
    if not isinstance(model, SequenceClassifier):
        raise ModelFileError(
            f"{path}: a {type(model).__name__}, not a keras_seqrnn "
            "SequenceClassifier."
        )
    return model
