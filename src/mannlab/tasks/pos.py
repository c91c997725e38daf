"""Part-of-speech tagging over a Universal Dependencies treebank (MANN-RL
paper, section 4.2): at each step the model sees one word and outputs its UPOS
tag; everything it knows about the context must come through its state.

Two ways in, by ``vectors``:

* **Frozen word vectors** (``vectors: glove-6b-50d``, the glove extra, or a
  GloVe / word2vec text file; `mannlab.tasks.vectors`), as the paper: the
  task looks words up itself and ``Batch.inputs`` are float32 vectors
  [T, B, D]. The vectors are input features, not parameters: not trained, not
  in the optimiser state nor the checkpoint, which records their
  fingerprint instead (`inputs_fingerprint`) and refuses other vectors.
  Vocabulary: every word the vectors know (held-out words too) has its own
  vector; training words the vectors lack, seen ``min_count`` times or more,
  get a fixed random vector each (scaled like the vectors); every other word
  shares ``<unk>``'s.
* **A learned embedding** (no ``vectors``): ``Batch.inputs`` are int32 word
  ids [T, B] (0 = ``<pad>``, 1 = ``<unk>``, then the training words seen
  ``min_count`` times or more, most frequent first) and the task's
  ``embedding`` asks for a trained table in front of the model
  (`mannlab.models.embedded`), initialised with unit variance per dimension.

Words are lowercased if ``lowercase`` (GloVe 6B's words are).

Targets: the 17 UPOS tags (`UPOS_TAGS`, index = class id); every word is
scored. Metrics: ``symbol_error_rate`` (tag error rate per sentence, first),
``sequence_error`` (sentence has any wrong tag), ``errors``, ``cost``; the
paper's F1 via ``symbol_scores``. Baselines (`baselines`), on the training
and held-out splits: the paper's most-frequent-tag tagger (each word's most
frequent training tag, unknown words the overall most frequent), and the
word-only oracle: the per-word majority tag computed on the split itself,
through the task's vocabulary, the ceiling of any tagger that sees only the
current word as the model is given it.

Splits: training batches come from ``train_path``; ``eval_batches`` is
``heldout_path`` (default EWT dev), ``train_eval_batches`` the training file.
Multiword tokens (``don't`` = ``do`` + ``n't``) appear as their syntactic
words, each tagged.
"""

from collections import Counter

import numpy as np

from mannlab.models.embedded import Embedding
from mannlab.tasks.base import Batch
from mannlab.tasks.classes import precision_recall_f1
from mannlab.tasks.conllu import ConlluError, Sentence, read_conllu
from mannlab.tasks.seqdata import (
    DataError,
    Example,
    SymbolSequenceTask,
    data_file,
    make_example,
)
from mannlab.tasks.vectors import WordVectors, load_vectors

UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
TAG_INDEX = {t: i for i, t in enumerate(UPOS_TAGS)}
PAD, UNK = "<pad>", "<unk>"
DEFAULT_TRAIN = "ud-english-ewt/en_ewt-ud-train.conllu.xz"
DEFAULT_HELDOUT = "ud-english-ewt/en_ewt-ud-dev.conllu.xz"
"""UD English EWT's train and dev splits, under the data directory (`seqdata.data_file`)."""
OWN_VECTORS_SEED = 7_404


def build_vocab(sentences: list[Sentence], lowercase: bool, min_count: int,
                exclude=frozenset()) -> list[str]:
    """``[<pad>, <unk>]`` + words seen >= min_count times and not in
    `exclude` (the words vectors give), most frequent first (ties alphabetical)."""
    counts = Counter(w.lower() if lowercase else w for s in sentences for w in s.forms)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in exclude),
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
                 vectors: str | None = None, length_buckets: int = 8):
        if min_count < 1:
            raise ValueError(f"pos: min_count must be >= 1, got {min_count}")
        self.train_path = data_file(train_path, DEFAULT_TRAIN)
        self.heldout_path = data_file(heldout_path, DEFAULT_HELDOUT)
        self.lowercase, self.min_count = lowercase, min_count
        self.train_sentences = read_conllu(self.train_path)
        self.heldout_sentences = read_conllu(self.heldout_path)
        for path, sents, split in ((self.train_path, self.train_sentences, "training"),
                                   (self.heldout_path, self.heldout_sentences, "held-out")):
            if not sents:
                raise DataError(f"pos: no sentences in {path} (the {split} file is empty or "
                                "holds only comments)")
            for s in sents:
                bad = [t for t in s.upos if t not in TAG_INDEX]
                if bad:
                    raise ConlluError(f"{path}:{s.line}: sentence has unknown UPOS tag "
                                      f"{bad[0]!r} (expected one of {' '.join(UPOS_TAGS)})")
        self.vectors = load_vectors(vectors) if vectors else None
        self._known = (({} if self.vectors is None else self.vectors.index) if not lowercase
                       else lowercased_index(self.vectors))
        own = build_vocab(self.train_sentences, lowercase, min_count, exclude=self._known)
        self.word_index = {w: i for i, w in enumerate(own)}
        if self.vectors is None:
            self.vocab = own
            self.input_size = len(own)
            self.embedding = Embedding(own, embedding_size)
            self.inputs_fingerprint = None
        else:
            self.vocab = own + self.vectors.words
            self.input_size = self.vectors.dim
            self.embedding = None
            self.inputs_fingerprint = {"vectors": self.vectors.fingerprint()}
            self._own_rows = own_vectors(len(own), self.vectors)
        self.input_symbols = self.vocab
        self.output_symbols = list(UPOS_TAGS)
        self.vocab_size = len(self.vocab)
        self.train_examples = [self._example(s) for s in self.train_sentences]
        self.heldout_examples = [self._example(s) for s in self.heldout_sentences]
        self._setup(length_buckets)
        self._baselines: dict | None = None

    def _norm(self, word: str) -> str:
        return word.lower() if self.lowercase else word

    def encode(self, words) -> np.ndarray:
        """Word ids of `words`: the vectors' row (after the task's own words)
        if the vectors know the word, else its own id, else ``<unk>``'s."""
        own, unk = len(self.word_index), self.word_index[UNK]
        ids = []
        for w in map(self._norm, words):
            row = self._known.get(w)
            ids.append(own + row if row is not None else self.word_index.get(w, unk))
        return np.array(ids, np.int32)

    def make_batch(self, examples: list[Example], steps: int | None = None) -> Batch:
        """Word ids [T, B], or with vectors their vectors [T, B, D] (zero on padding)."""
        batch = super().make_batch(examples, steps)
        if self.vectors is None:
            return batch
        return batch._replace(inputs=self.lookup(batch.inputs) * batch.step_mask[..., None])

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The input vectors [..., D] float32 of word ids [...]."""
        own = len(self.word_index)
        out = np.empty(ids.shape + (self.vectors.dim,), np.float32)
        mine = ids < own
        out[mine] = self._own_rows[ids[mine]]
        out[~mine] = self.vectors.table[ids[~mine] - own]
        return out

    def _example(self, s: Sentence) -> Example:
        return make_example(self.encode(s.forms), [TAG_INDEX[t] for t in s.upos])

    def baselines(self) -> dict[str, dict[str, dict[str, float]]]:
        """Scores per split of the most-frequent-tag tagger (the paper's
        baseline, fitted on the training split) and of the word-only oracle
        (the per-word-id majority tag fitted on the split it is scored on)."""
        if self._baselines is None:
            table, default = most_frequent_tags(self.train_sentences, self.lowercase)
            frequent, oracle = {}, {}
            for split, sents, examples in (
                    ("train", self.train_sentences, self.train_examples),
                    ("heldout", self.heldout_sentences, self.heldout_examples)):
                gold = np.array([TAG_INDEX[t] for s in sents for t in s.upos], np.int64)
                guess = np.array([TAG_INDEX[table.get(self._norm(w), default)]
                                  for s in sents for w in s.forms], np.int64)
                ids = np.concatenate([e.inputs for e in examples])
                frequent[split] = tag_scores(guess, gold)
                oracle[split] = tag_scores(majority_per_id(ids, gold), gold)
            self._baselines = {"most-frequent tag": frequent, "word-only oracle": oracle}
        return self._baselines


def lowercased_index(vectors: WordVectors | None) -> dict[str, int]:
    """Lowercased word -> row: a word's own row if it is lowercase in the
    vectors, else the first row of a cased form (GloVe 6B is all lowercase)."""
    if vectors is None:
        return {}
    index = dict(vectors.index)
    for w, i in vectors.index.items():
        index.setdefault(w.lower(), i)
    return {w: i for w, i in index.items() if w == w.lower()}


def own_vectors(count: int, vectors: WordVectors) -> np.ndarray:
    """The fixed input vectors [count, D] of the task's own words (``<pad>``:
    zeros; ``<unk>`` and training words the vectors lack: normal, scaled like
    the vectors, from a fixed seed, so every run sees the same ones)."""
    rng = np.random.default_rng(OWN_VECTORS_SEED)
    scale = float(np.std(vectors.table[:10_000])) or 1.0
    rows = rng.normal(0.0, scale, (count, vectors.dim)).astype(np.float32)
    rows[0] = 0.0
    return rows


def majority_per_id(ids: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Each token's guess [N]: the tag most often given to its id in (ids,
    gold) [N] (ties: the lower tag index)."""
    counts = np.zeros((int(ids.max()) + 1, len(UPOS_TAGS)), np.int64)
    np.add.at(counts, (ids, gold), 1)
    return counts.argmax(1)[ids]


def tag_scores(guess: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Accuracy, micro F1 and weighted P / R / F1 of tag guesses [N] against gold [N]."""
    micro = precision_recall_f1(guess, gold, average="micro")
    weighted = precision_recall_f1(guess, gold, average="weighted")
    return {"accuracy": float((guess == gold).mean()) if gold.size else 0.0,
            "micro_f1": micro["f1"], "weighted_f1": weighted["f1"],
            "weighted_precision": weighted["precision"],
            "weighted_recall": weighted["recall"], "tokens": int(gold.size)}
