"""A small CoNLL-U reader (Universal Dependencies format).

Format (https://universaldependencies.org/format.html): sentences are blocks
of lines separated by blank lines; ``#`` lines are comments (``# text = ...``
holds the sentence text); every other line has exactly 10 tab-separated
fields ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC. ID is a word
index ``1, 2, ...``, a multiword-token range ``1-2`` or an empty node ``1.1``;
the last two are skipped here, so a sentence's words are its syntactic words
with their UPOS tags. Files may be plain or ``.xz`` / ``.gz`` compressed.

A malformed line raises `ConlluError` naming the file and line number; text
that is not UTF-8 (file and line) or a damaged compressed file (file) raises
`DataError`, of which `ConlluError` is a kind.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mannlab.tasks.seqdata import DataError, iter_lines

_WORD_ID = re.compile(r"[1-9][0-9]*$")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*$")
_EMPTY_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*$")


class ConlluError(DataError):
    """A malformed CoNLL-U file; the message names the file and line."""


class Sentence(NamedTuple):
    """One sentence: its words (FORM), their UPOS tags, the ``# text =``
    comment (None if absent) and the line number where the sentence starts."""

    forms: tuple[str, ...]
    upos: tuple[str, ...]
    text: str | None
    line: int


def iter_conllu(path: str | os.PathLike) -> Iterator[Sentence]:
    """Yield the sentences of a CoNLL-U file one by one."""
    path = Path(path)
    forms, upos, text, start = [], [], None, None
    for lineno, raw in iter_lines(path):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if forms:  # a block of comments only (e.g. file-level) is ignored
                yield Sentence(tuple(forms), tuple(upos), text, start)
            forms, upos, text, start = [], [], None, None
            continue
        if start is None:
            start = lineno
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep and key.strip() == "text":
                text = value.strip()
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise ConlluError(f"{path}:{lineno}: expected 10 tab-separated fields, got "
                              f"{len(fields)}: {line[:80]!r}")
        wid = fields[0]
        if _RANGE_ID.match(wid) or _EMPTY_ID.match(wid):
            continue
        if not _WORD_ID.match(wid):
            raise ConlluError(f"{path}:{lineno}: bad word ID {wid!r} (expected 1, 2, ..., "
                              f"a range like 1-2 or an empty node like 1.1)")
        if int(wid) != len(forms) + 1:
            raise ConlluError(f"{path}:{lineno}: word ID {wid} out of sequence (expected "
                              f"{len(forms) + 1})")
        if not fields[1] or not fields[3]:
            raise ConlluError(f"{path}:{lineno}: empty FORM or UPOS field")
        forms.append(fields[1])
        upos.append(fields[3])
    if forms:
        yield Sentence(tuple(forms), tuple(upos), text, start)


def read_conllu(path: str | os.PathLike) -> list[Sentence]:
    """All sentences of a CoNLL-U file (plain, .xz or .gz)."""
    return list(iter_conllu(path))


def is_conllu(path: str | os.PathLike) -> bool:
    """True if the name ends in .conllu (optionally followed by .xz or .gz)."""
    name = Path(path).name
    for suffix in (".xz", ".gz"):
        name = name.removesuffix(suffix)
    return name.endswith(".conllu")
