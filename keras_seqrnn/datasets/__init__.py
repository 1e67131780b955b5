"""Datasets and readers for sequence classification."""

from keras_seqrnn.datasets.japanese_vowels import (
    load_japanese_vowels as load_japanese_vowels,
)
from keras_seqrnn.datasets.ts_format import TsDataset as TsDataset
from keras_seqrnn.datasets.ts_format import TsFormatError as TsFormatError
from keras_seqrnn.datasets.ts_format import load_ts as load_ts

__all__ = ["TsDataset", "TsFormatError", "load_japanese_vowels", "load_ts"]
