"""Datasets and readers for sequence classification."""

from keras_seqrnn.datasets.archive import archive_pairs as archive_pairs
from keras_seqrnn.datasets.archive import load_dataset as load_dataset
from keras_seqrnn.datasets.japanese_vowels import (
    load_japanese_vowels as load_japanese_vowels,
)
from keras_seqrnn.datasets.missing_values import (
    MISSING_POLICIES as MISSING_POLICIES,
)
from keras_seqrnn.datasets.missing_values import fill_missing as fill_missing
from keras_seqrnn.datasets.sequence_dataset import (
    DataFormatError as DataFormatError,
)
from keras_seqrnn.datasets.sequence_dataset import (
    SequenceDataset as SequenceDataset,
)
from keras_seqrnn.datasets.ts_format import TsFormatError as TsFormatError
from keras_seqrnn.datasets.ts_format import load_ts as load_ts
from keras_seqrnn.datasets.tsv_format import TsvFormatError as TsvFormatError
from keras_seqrnn.datasets.tsv_format import load_tsv as load_tsv

__all__ = [
    "MISSING_POLICIES",
    "DataFormatError",
    "SequenceDataset",
    "TsFormatError",
    "TsvFormatError",
    "archive_pairs",
    "fill_missing",
    "load_dataset",
    "load_japanese_vowels",
    "load_ts",
    "load_tsv",
]
