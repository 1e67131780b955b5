"""Data sets of the UCR/UEA archive in either of its formats."""

import os
import pathlib

from keras_seqrnn.datasets.sequence_dataset import DataFormatError
from keras_seqrnn.datasets.sequence_dataset import SequenceDataset
from keras_seqrnn.datasets.ts_format import load_ts
from keras_seqrnn.datasets.tsv_format import load_tsv

FORMATS = (".ts", ".tsv")


def load_dataset(path: str | os.PathLike, missing: str = "error") -> SequenceDataset:
    """Loads a `.ts` (UEA/UCR) or `.tsv` (UCR 2018) file.

    The format comes from the extension, or, for any other name, from the
    content: a `.ts` file starts with `#` comments or `@` header lines.

    Args:
        path: the file.
        missing: the missing-value policy, `"error"`, `"interpolate"` or
            `"ffill"` (see `keras_seqrnn.datasets.fill_missing`).
            Default: `"error"`.

    Returns:
        A `SequenceDataset`.

    Raises:
        FileNotFoundError: If `path` does not exist (or is a folder).
        DataFormatError: If the file is malformed (`TsFormatError`,
            `TsvFormatError`).

    Example:

    >>> dataset = load_dataset("CBF/CBF_TRAIN.tsv")  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file.")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        suffix = ".ts" if _looks_like_ts(path) else ".tsv"
    reader = load_ts if suffix == ".ts" else load_tsv
    return reader(path, missing=missing)


def _looks_like_ts(path):
    with open(path, "rb") as file:
        for raw in file:
            text = raw.lstrip(b"\xef\xbb\xbf").strip()
            if text:
                return text[:1] in (b"#", b"@")
    return False


def archive_pairs(folder: str | os.PathLike) -> dict[str, tuple[pathlib.Path, pathlib.Path]]:
    """The data sets of an archive folder: name to `(train, test)` files.

    Finds `NAME_TRAIN.ts` / `NAME_TEST.ts` and `NAME_TRAIN.tsv` /
    `NAME_TEST.tsv` pairs in `folder` and one level of subfolders, as the
    archives ship them (`CBF/CBF_TRAIN.tsv`). Where both formats are there,
    `.ts` wins.

    Args:
        folder: the archive's root folder.

    Returns:
        A dict sorted by name.

    Raises:
        DataFormatError: If the folder holds no pair.
    """
    folder = pathlib.Path(folder)
    pairs = {}
    for suffix in reversed(FORMATS):
        for train in [*folder.glob(f"*_TRAIN{suffix}"), *folder.glob(f"*/*_TRAIN{suffix}")]:
            test = train.with_name(train.name.replace("_TRAIN", "_TEST"))
            if test.is_file():
                pairs[train.name[: -len(f"_TRAIN{suffix}")]] = (train, test)
    if not pairs:
        raise DataFormatError(
            f"{folder}: no NAME_TRAIN / NAME_TEST pair of .ts or .tsv files."
        )
    return dict(sorted(pairs.items()))
