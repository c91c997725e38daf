"""Sentence memorisation (MANN-RL paper, section 4.3): read a sentence
character by character, then reproduce it.

Layout of a sentence ``c1 .. cL`` (2L + 2 steps, one-hot in, softmax out)::

    step     0     1 .. L     L+1     L+2 .. 2L+1
    input    <s>   c1 .. cL   <sep>   <empty> ...
    output   <empty> ...      c1      c2 .. cL </s>

``<s>`` starts the sentence, ``<sep>`` ends the input and starts the output,
``</s>`` ends it all; while reading the model outputs ``<empty>`` and while
reproducing it is fed ``<empty>``. Input and output share one vocabulary:
the four reserved symbols (ids 0-3) then every character of the selected
sentences, sorted.

Curriculum (``echo_fraction``): each training row is, with this probability,
a single-character echo sequence ``<s> c <sep> <empty>`` -> ``<empty> <empty>
c </s>`` with ``c`` uniform over the characters (the paper augmented its
sentences with such sequences, one per character).

Scoring (``score``): ``"all"`` (default, as the paper's F1 over output
symbols) scores every step; ``"answer"`` only the reproduction steps (from
``<sep>`` on, ``</s>`` included). Metrics: ``sequence_error`` (first: the
sentence is not reproduced exactly, i.e. 1 - whole-sentence accuracy),
``symbol_error_rate``, ``errors``, ``cost``; F1 via ``symbol_scores``.

Corpus (``path``): a plain-text file, one sentence per line (blank lines
skipped), or a CoNLL-U file (name ending ``.conllu``, optionally ``.xz`` /
``.gz``) whose ``# text =`` lines are used (sentences without one: words
joined by spaces). Default: EWT train. Sentences are stripped, de-duplicated
(first occurrence kept) and the ``count`` shortest are selected (ties in
file order); optionally those longer than ``max_chars`` are dropped first.

Held-out split (deterministic): of the selected sentences in (length, file)
order, every ``heldout_every``-th (indices k-1, 2k-1, ...) is held out, the
rest are the training split; ``heldout_every=0`` holds nothing out and
``eval_batches`` then scores the training sentences (the paper reports
training-set F1, since the task is memorisation).
"""

from pathlib import Path
from typing import Literal

import numpy as np

from mannlab.tasks.base import Batch
from mannlab.tasks.conllu import is_conllu, iter_conllu
from mannlab.tasks.seqdata import (
    DataError,
    Example,
    SymbolSequenceTask,
    data_file,
    iter_lines,
    make_example,
)

EMPTY, START, SEP, END = "<empty>", "<s>", "<sep>", "</s>"
RESERVED = (EMPTY, START, SEP, END)
DEFAULT_CORPUS = "ud-english-ewt/en_ewt-ud-train.conllu.xz"
"""UD English EWT's training split, under the data directory (`seqdata.data_file`)."""


def read_sentences(path) -> list[str]:
    """Sentences of a plain-text (one per line) or CoNLL-U file, stripped, in
    file order; raises ValueError naming the file if it holds none."""
    path = Path(path)
    if is_conllu(path):
        out = [(s.text if s.text is not None else " ".join(s.forms)).strip()
               for s in iter_conllu(path)]
    else:
        out = [line.strip() for _, line in iter_lines(path)]
    out = [s for s in out if s]
    if not out:
        raise DataError(f"sentences: no sentences in {path} (the file is empty or blank)")
    return out


def select_shortest(sentences: list[str], count: int, max_chars: int | None = None) -> list[str]:
    """De-duplicate, drop those over `max_chars`, keep the `count` shortest
    (stable: ties in original order), returned in (length, original) order."""
    seen, unique = set(), []
    for s in sentences:
        if s not in seen and (max_chars is None or len(s) <= max_chars):
            seen.add(s)
            unique.append(s)
    return sorted(unique, key=len)[:count]


class SentencesTask(SymbolSequenceTask):
    metric_names = ("sequence_error", "symbol_error_rate", "errors", "cost")

    def __init__(self, path: str | None = None, count: int = 500,
                 max_chars: int | None = None, echo_fraction: float = 0.1,
                 heldout_every: int = 10, score: Literal["all", "answer"] = "all",
                 length_buckets: int = 4):
        if count < 1:
            raise ValueError(f"sentences: count must be >= 1, got {count}")
        if not 0.0 <= echo_fraction <= 1.0:
            raise ValueError(f"sentences: echo_fraction must be in [0, 1], got {echo_fraction}")
        if heldout_every < 0 or heldout_every == 1:
            raise ValueError(f"sentences: heldout_every must be 0 (none) or >= 2, got "
                             f"{heldout_every}")
        if score not in ("all", "answer"):
            raise ValueError(f"sentences: score must be 'all' or 'answer', got {score!r}")
        self.path = data_file(path, DEFAULT_CORPUS)
        self.echo_fraction, self.score = echo_fraction, score
        selected = select_shortest(read_sentences(self.path), count, max_chars)
        if not selected:
            raise ValueError(f"sentences: no sentence of at most {max_chars} characters in "
                             f"{self.path}")
        k = heldout_every
        if k and len(selected) < k:  # else the "held-out" scores would be the training set's
            raise DataError(f"sentences: {self.path} gives {len(selected)} sentences (count "
                            f"{count}), fewer than heldout_every={k}: no sentence would be held "
                            "out (heldout_every=0 holds none out and says so)")
        held = [i for i in range(len(selected)) if k and i % k == k - 1]
        self.train_sentences = [s for i, s in enumerate(selected) if not (k and i % k == k - 1)]
        self.heldout_sentences = [selected[i] for i in held]
        if not self.train_sentences:
            raise ValueError(f"sentences: no training sentences left in {self.path}")
        self.chars = sorted(set("".join(selected)))
        self.input_symbols = self.output_symbols = list(RESERVED) + self.chars
        self.index = {c: i for i, c in enumerate(self.input_symbols)}
        self.input_size = len(self.input_symbols)
        self.train_examples = [self.encode(s) for s in self.train_sentences]
        self.heldout_examples = [self.encode(s)
                                 for s in (self.heldout_sentences or self.train_sentences)]
        self._setup(length_buckets)
        self.min_length = min(self.min_length, 4)  # echo sequences are 4 steps
        self.echoes = [self.encode(c) for c in self.chars]

    @property
    def heldout_split(self) -> str:
        """"train_eval" when nothing is held out: `heldout` then gives training sentences."""
        return "heldout" if self.heldout_sentences else "train_eval"

    def splits(self, train_limit: int | None = None):
        """As `SymbolSequenceTask.splits`; with nothing held out
        (``heldout_every=0``) there is no held-out split, only the training
        one (the evaluation set is then the training sentences, and is not
        reported as held out)."""
        out = super().splits(train_limit)
        if not self.heldout_sentences:
            del out["heldout"]
        return out

    def encode(self, sentence: str) -> Example:
        """The example of one sentence (see the module docstring)."""
        ids = [self.index[c] for c in sentence]
        L = len(ids)
        e, s, sep, end = (self.index[x] for x in RESERVED)
        inputs = [s] + ids + [sep] + [e] * L
        targets = [e] * (L + 1) + ids + [end]
        scored = np.ones(2 * L + 2, np.float32)
        if self.score == "answer":
            scored[: L + 1] = 0.0
        return make_example(inputs, targets, scored)

    def decode(self, ids) -> str:
        """Characters of `ids`, reserved symbols dropped."""
        return "".join(self.output_symbols[i] for i in ids if i >= len(RESERVED))

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """Training sentences (uniform, with replacement), each row replaced by a
        single-character echo with probability ``echo_fraction``. With `length`,
        training sentences of exactly `length` steps (= 2 * chars + 2), no echoes."""
        if length is not None:
            return super().sample(rng, batch_size, length)
        idx = rng.integers(0, len(self.train_examples), size=batch_size)
        echo = rng.random(batch_size) < self.echo_fraction
        chars = rng.integers(0, len(self.echoes), size=batch_size)
        return self.make_batch([self.echoes[c] if is_echo else self.train_examples[i]
                                for i, is_echo, c in zip(idx, echo, chars)])
