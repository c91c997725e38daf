"""Part-of-speech tagging over a Universal Dependencies treebank (MANN-RL
paper, section 4.2): at each step the model sees one word and outputs its UPOS
tag; everything it knows about the context must come through its state.

Inputs are word ids, not vectors: ``Batch.inputs`` is int32 [T, B] (0 =
``<pad>``, 1 = ``<unk>``, then the training vocabulary by descending
frequency). The task exposes ``vocab_size`` (= ``input_size``), ``vocab`` and its
``embedding`` (an `Embedding`: size, optional vectors file, frozen or not); a model is
built for it with `mannlab.models.embedded.wrap_for_task`, which puts a learned
embedding (optionally initialised from a GloVe/word2vec text file) in front of
any sequence model. The paper used pre-computed GloVe vectors; offline the
embedding is learnt, or a user supplies a vectors file.

Vocabulary: word forms of the training file, lowercased if ``lowercase``;
words seen fewer than ``min_count`` times there map to ``<unk>`` (so the
model learns an unknown-word embedding), as do held-out words never seen.

Targets: the 17 UPOS tags (`UPOS_TAGS`, index = class id); every word is
scored. Metrics: ``symbol_error_rate`` (tag error rate per sentence, first),
``sequence_error`` (sentence has any wrong tag), ``errors``, ``cost``; the
paper's F1 via ``symbol_scores``. ``most_frequent_tag_baseline()`` gives the
paper's baseline (0.92 F1 in the paper): each word's most frequent training
tag, unknown words the overall most frequent tag.

Splits: training batches come from ``train_path``; ``eval_batches`` is
``heldout_path`` (default EWT dev), ``train_eval_batches`` the training file.
Multiword tokens (``don't`` = ``do`` + ``n't``) appear as their syntactic
words, each tagged.
"""

from collections import Counter
from pathlib import Path

import numpy as np

from mannlab.models.embedded import Embedding
from mannlab.tasks.classes import precision_recall_f1
from mannlab.tasks.conllu import ConlluError, Sentence, read_conllu
from mannlab.tasks.seqdata import (
    DataError,
    Example,
    SymbolSequenceTask,
    data_file,
    make_example,
)

UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
TAG_INDEX = {t: i for i, t in enumerate(UPOS_TAGS)}
PAD, UNK = "<pad>", "<unk>"
DEFAULT_TRAIN = "ud-english-ewt/en_ewt-ud-train.conllu.xz"
DEFAULT_HELDOUT = "ud-english-ewt/en_ewt-ud-dev.conllu.xz"
"""UD English EWT's train and dev splits, under the data directory (`seqdata.data_file`)."""


def build_vocab(sentences: list[Sentence], lowercase: bool, min_count: int) -> list[str]:
    """``[<pad>, <unk>]`` + words seen >= min_count times, most frequent first
    (ties alphabetical)."""
    counts = Counter(w.lower() if lowercase else w for s in sentences for w in s.forms)
    words = sorted((w for w, c in counts.items() if c >= min_count),
                   key=lambda w: (-counts[w], w))
    return [PAD, UNK] + words


def most_frequent_tags(sentences: list[Sentence], lowercase: bool) -> tuple[dict[str, str], str]:
    """Each word's most frequent tag (ties: the tag more frequent overall, then
    the first in `UPOS_TAGS`), and the overall most frequent tag."""
    overall = Counter(t for s in sentences for t in s.upos)
    rank = {t: (-overall[t], TAG_INDEX.get(t, len(TAG_INDEX)), t) for t in overall}
    per_word: dict[str, Counter] = {}
    for s in sentences:
        for w, t in zip(s.forms, s.upos):
            per_word.setdefault(w.lower() if lowercase else w, Counter())[t] += 1
    table = {w: min(c, key=lambda t: (-c[t],) + rank[t]) for w, c in per_word.items()}
    return table, min(overall, key=lambda t: rank[t])


class POSTask(SymbolSequenceTask):
    one_hot = False
    metric_names = ("symbol_error_rate", "sequence_error", "errors", "cost")

    def __init__(self, train_path: str | None = None, heldout_path: str | None = None,
                 lowercase: bool = True, min_count: int = 2, embedding_size: int = 64,
                 vectors_path: str | None = None, freeze_embeddings: bool = False,
                 length_buckets: int = 8):
        if min_count < 1:
            raise ValueError(f"pos: min_count must be >= 1, got {min_count}")
        self.train_path = data_file(train_path, DEFAULT_TRAIN)
        self.heldout_path = data_file(heldout_path, DEFAULT_HELDOUT)
        self.lowercase, self.min_count = lowercase, min_count
        self.embedding_size = embedding_size
        self.vectors_path = Path(vectors_path).expanduser() if vectors_path else None
        if self.vectors_path is not None and not self.vectors_path.is_file():
            raise FileNotFoundError(f"pos: word-vectors file not found: {self.vectors_path}")
        self.freeze_embeddings = freeze_embeddings
        self.train_sentences = read_conllu(self.train_path)
        self.heldout_sentences = read_conllu(self.heldout_path)
        for path, sents, split in ((self.train_path, self.train_sentences, "training"),
                                   (self.heldout_path, self.heldout_sentences, "held-out")):
            if not sents:
                raise DataError(f"pos: no sentences in {path} (the {split} file is empty or "
                                "holds only comments)")
        for path, sents in ((self.train_path, self.train_sentences),
                            (self.heldout_path, self.heldout_sentences)):
            for s in sents:
                bad = [t for t in s.upos if t not in TAG_INDEX]
                if bad:
                    raise ConlluError(f"{path}:{s.line}: sentence has unknown UPOS tag "
                                      f"{bad[0]!r} (expected one of {' '.join(UPOS_TAGS)})")
        self.vocab = build_vocab(self.train_sentences, lowercase, min_count)
        self.word_index = {w: i for i, w in enumerate(self.vocab)}
        self.input_symbols = self.vocab
        self.output_symbols = list(UPOS_TAGS)
        self.vocab_size = self.input_size = len(self.vocab)
        self.embedding = Embedding(self.vocab, embedding_size, self.vectors_path, lowercase,
                                   freeze_embeddings)
        self.train_examples = [self._example(s) for s in self.train_sentences]
        self.heldout_examples = [self._example(s) for s in self.heldout_sentences]
        self._setup(length_buckets)
        self._baseline: dict | None = None

    def _norm(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def encode(self, words) -> np.ndarray:
        """Word ids of `words` (unknown words -> ``<unk>``)."""
        unk = self.word_index[UNK]
        return np.array([self.word_index.get(self._norm(w), unk) for w in words], np.int32)

    def _example(self, s: Sentence) -> Example:
        return make_example(self.encode(s.forms), [TAG_INDEX[t] for t in s.upos])

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        return {"most-frequent tag": self.most_frequent_tag_baseline()}

    def most_frequent_tag_baseline(self) -> dict[str, dict[str, float]]:
        """The paper's baseline, fitted on the training file: ``{"train": scores,
        "heldout": scores}`` with scores ``accuracy``, ``micro_f1``,
        ``weighted_f1``, ``weighted_precision``, ``weighted_recall``, ``tokens``.
        Words are normalised like the vocabulary (lowercase) but every training
        word counts, whatever ``min_count``."""
        if self._baseline is None:
            table, default = most_frequent_tags(self.train_sentences, self.lowercase)
            self._baseline = {}
            for split, sents in (("train", self.train_sentences),
                                 ("heldout", self.heldout_sentences)):
                gold = np.array([TAG_INDEX[t] for s in sents for t in s.upos], np.int64)
                pred = np.array([TAG_INDEX[table.get(self._norm(w), default)]
                                 for s in sents for w in s.forms], np.int64)
                micro = precision_recall_f1(pred, gold, average="micro")
                weighted = precision_recall_f1(pred, gold, average="weighted")
                self._baseline[split] = {
                    "accuracy": float((pred == gold).mean()) if gold.size else 0.0,
                    "micro_f1": micro["f1"], "weighted_f1": weighted["f1"],
                    "weighted_precision": weighted["precision"],
                    "weighted_recall": weighted["recall"], "tokens": int(gold.size)}
        return self._baseline
