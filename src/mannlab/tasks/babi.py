"""bAbI question answering (Weston et al. 2015), presented as in the DNC paper
(Graves et al. 2016, Methods, "bAbI task descriptions").

**The format** (`read_babi`): a story is numbered lines, ``1, 2, 3, ...``; a
line numbered 1 starts a new story. A statement is ``ID text``; a question
is ``ID question<TAB>answer<TAB>supporting ids`` (the ids, space-separated,
name earlier lines of the same story; they may be left out). Answers of
several words are comma-separated: lists in task 8 (``apple,football``),
paths in task 19 (``n,w``). A malformed line raises `BabiError`, one line
naming the file and line.

**The protocol** (`story_example`): a whole story is one sequence, every
question in place. Words are lower-cased; ``.`` and ``?`` are tokens of
their own (``punctuation="tokens"``, the default) or dropped (``"drop"``).
Each question is followed by the answer marker ``-`` once per answer word,
and at those steps, and only there, the target is the answer word
(``where is mary ? -`` -> ``bathroom``; task 8's ``what is john carrying ?
- -`` -> ``apple football``). The marker is the model's input at the answer
steps (the answer is never fed back). Targets are word ids: the output is a
softmax over the whole vocabulary, as in the paper.

**The vocabulary** (`Vocabulary`): ``-``, ``.``, ``?``, then the words of all
20 tasks in alphabetical order, whichever tasks a run uses, so every bAbI run
has the same input and output size. The shipped data's words are listed in
``data/babi/vocabulary.txt`` (141 words, 144 symbols; the DNC paper's
published data had 159); a data directory without that file gets the words
of all its files.

**Inputs** (``inputs``): ``"one_hot"`` (default; the paper's: one-hot
vectors [T, B, V]) or ``"embedding"`` (word ids [T, B] and a learned
`Embedding` of ``embedding_size`` in front of the model).

**Options**: ``tasks``, one task, several (``[1, 2, 3]``) or ``"all"`` 20
jointly (the paper's setting); ``train_size``, ``"10k"`` (10,000 questions
per task, the paper's) or ``"1k"`` (the first 1,000 questions of the same
file, the last story cut after its 1,000th question); ``train_stories``, at
most this many training stories per task (small experiments). Training
batches draw a task uniformly, then one of its stories uniformly, so every
task weighs the same (an epoch, `epoch_stories`, is every training story
once). ``permute_entities`` (off by default; not the paper's protocol) gives
each training story drawn a fresh consistent renaming within each of the
`ENTITY_GROUPS` (the male names, the female names, the rooms, the objects
of the generator's world), inputs and answers alike: a regulariser for small
training sets (`permute_entities`). Evaluation stories are never renamed.

**Metrics**: per story (`loss`, the training loop's) ``word_error_rate``
(wrong answer words / answer words; lower is better: the convergence
metric), ``story_error`` (any answer word wrong), ``errors``, ``cost``. On a
split (`scores`): each task's word error rate ``qaN_error`` (the fraction of
its answer words predicted wrong), their mean ``mean_error``, the number of
``failed_tasks`` (error > 5%, the paper's criterion), ``word_error_rate``
(all answer words pooled), ``question_error`` (a question is wrong if any of
its words is) and the counts. `splits` are ``test`` (every test story) and
``train`` (the first ``train_limit`` training stories, interleaved over the
tasks). `scores` tells a story's task from its words (every story's token
sequence is looked up; the tasks' stories never coincide).

Long stories (task 3's reach 749 tokens, task 4's have 24) are padded to
``length_buckets`` edges spaced geometrically between the shortest and the
longest story (`geometric_edges`), so few programs compile and a batch is
never padded by more than a fixed factor.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mannlab.models.embedded import Embedding
from mannlab.tasks.base import Batch
from mannlab.tasks.classes import class_loss
from mannlab.tasks.seqdata import (
    DataError,
    Example,
    SymbolSequenceTask,
    data_file,
    iter_lines,
    make_example,
)

TASK_NAMES = {
    1: "single supporting fact", 2: "two supporting facts", 3: "three supporting facts",
    4: "two argument relations", 5: "three argument relations", 6: "yes/no questions",
    7: "counting", 8: "lists/sets", 9: "simple negation", 10: "indefinite knowledge",
    11: "basic coreference", 12: "conjunction", 13: "compound coreference",
    14: "time reasoning", 15: "basic deduction", 16: "basic induction",
    17: "positional reasoning", 18: "size reasoning", 19: "path finding",
    20: "agent's motivations"}
"""The 20 tasks by number (Weston et al. 2015, Table 1)."""
ALL_TASKS = tuple(TASK_NAMES)
MARKER = "-"
PUNCTUATION = (".", "?")
SPECIALS = (MARKER,) + PUNCTUATION
TRAIN_SIZES = {"1k": 1_000, "10k": 10_000}
"""Training questions per task of each size."""
ENTITY_GROUPS = (("daniel", "john"), ("mary", "sandra"),
                 ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office"),
                 ("apple", "football", "milk"))
"""Words interchangeable in every story of the generator's world: the
actors by gender (tasks 11 and 13 refer to them as he / she), the rooms,
the objects carried (`permute_entities`)."""
FAILED = 0.05
"""A task fails with a test word error above this (the DNC paper's criterion)."""
DATA_DIR = "babi"
"""The standard data set's directory under the data directory (`seqdata.data_file`)."""
VOCABULARY_FILE = "vocabulary.txt"
_TOKEN = re.compile(r"[^\s.?!,;:]+|[.?!,;:]")


class BabiError(DataError):
    """A malformed bAbI file; the message names the file and line."""


class Line(NamedTuple):
    """One line of a story: its number in the story, its text, and for a
    question its answer words and supporting line numbers (None for a statement)."""

    id: int
    text: str
    answer: tuple[str, ...] | None = None
    supports: tuple[int, ...] | None = None
    source_line: int = 0

    @property
    def is_question(self) -> bool:
        return self.answer is not None


class Story(NamedTuple):
    """A story's lines in order, and where it starts in its file."""

    lines: tuple[Line, ...]
    start: int

    @property
    def questions(self) -> int:
        return sum(line.is_question for line in self.lines)


def parse_line(path, lineno: int, raw: str, expected: int) -> Line:
    """One bAbI line; `expected` is the number the story's next line must
    have (1 also starts a new story). `BabiError` on a malformed line."""
    line = raw.rstrip("\r\n")
    head, _, rest = line.partition(" ")
    if not head.isdigit() or not rest.strip():
        raise BabiError(f"{path}:{lineno}: expected 'ID text' (a line number, a space and "
                        f"text), got {line[:80]!r}")
    number = int(head)
    if number not in (1, expected):
        raise BabiError(f"{path}:{lineno}: line number {number} out of sequence (expected "
                        f"{expected}, or 1 to start a new story)")
    fields = rest.split("\t")
    text = fields[0].strip()
    if len(fields) == 1:
        return Line(number, text, source_line=lineno)
    if len(fields) > 3:
        raise BabiError(f"{path}:{lineno}: a question has 3 tab-separated fields (question, "
                        f"answer, supporting ids), got {len(fields)}")
    answer = tuple(w.strip() for w in fields[1].split(","))
    if not text or not all(answer):
        raise BabiError(f"{path}:{lineno}: empty question or answer word in "
                        f"{fields[1].strip()!r}")
    supports: tuple[int, ...] = ()
    if len(fields) == 3:
        ids = fields[2].split()
        if not all(i.isdigit() for i in ids):
            raise BabiError(f"{path}:{lineno}: supporting ids must be line numbers, got "
                            f"{fields[2].strip()!r}")
        supports = tuple(int(i) for i in ids)
        late = [i for i in supports if not 1 <= i < number]
        if late:
            raise BabiError(f"{path}:{lineno}: supporting id {late[0]} is not an earlier line "
                            f"of the story (this is line {number})")
    return Line(number, text, answer, supports, lineno)


def iter_stories(path: str | os.PathLike, max_questions: int | None = None) -> Iterator[Story]:
    """The stories of a bAbI file (plain, .xz or .gz), in order; with
    `max_questions`, only up to the story holding that many questions, cut
    right after its last needed question."""
    path = Path(path)
    lines: list[Line] = []
    start, questions = 0, 0
    for lineno, raw in iter_lines(path):
        if not raw.strip():
            continue
        line = parse_line(path, lineno, raw, len(lines) + 1)
        if line.id == 1 and lines:
            yield Story(tuple(lines), start)
            lines = []
        if not lines:
            start = lineno
        lines.append(line)
        questions += line.is_question
        if max_questions is not None and questions >= max_questions:
            break
    if lines:
        yield Story(tuple(lines), start)


def read_babi(path: str | os.PathLike, max_questions: int | None = None) -> list[Story]:
    """All stories of a bAbI file (see `iter_stories`)."""
    stories = list(iter_stories(path, max_questions))
    if not stories:
        raise BabiError(f"{path}: no stories (the file is empty)")
    return stories


def tokens(text: str, punctuation: str = "tokens") -> list[str]:
    """Lower-cased words of `text`, punctuation marks as tokens of their own
    (``"tokens"``) or left out (``"drop"``)."""
    out = _TOKEN.findall(text.lower())
    return out if punctuation == "tokens" else [t for t in out if t[0].isalnum()]


def story_words(story: Story) -> set[str]:
    """The lower-cased words (no punctuation) of a story's text and answers."""
    words = set()
    for line in story.lines:
        words.update(tokens(line.text, "drop"))
        words.update(w.lower() for w in line.answer or ())
    return words


class Vocabulary(NamedTuple):
    """The symbols (index = id): ``-``, ``.``, ``?``, then the words, sorted."""

    symbols: tuple[str, ...]

    @classmethod
    def of_words(cls, words) -> "Vocabulary":
        return cls(SPECIALS + tuple(sorted(set(words) - set(SPECIALS))))

    @property
    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}


def task_file(directory: Path, task: int, split: str) -> Path:
    """``qaN_<split>.txt`` (or .xz / .gz) in `directory`, or the published
    set's ``qaN_<name>_<split>.txt``."""
    for suffix in (".txt.xz", ".txt.gz", ".txt"):
        path = directory / f"qa{task}_{split}{suffix}"
        if path.is_file():
            return path
    found = sorted(directory.glob(f"qa{task}_*_{split}.txt*"))
    if not found:
        raise FileNotFoundError(f"bAbI data file not found: {directory}/qa{task}_{split}.txt"
                                f"[.xz] (task {task}, {split} split)")
    return found[0]


def read_vocabulary(directory: Path) -> Vocabulary:
    """The words of ``vocabulary.txt`` in `directory` (one a line), else of
    every task's training and test file there."""
    listed = directory / VOCABULARY_FILE
    if listed.is_file():
        return Vocabulary.of_words(w.strip() for _, w in iter_lines(listed) if w.strip())
    words: set[str] = set()
    for task in ALL_TASKS:
        for split in ("train", "test"):
            for story in iter_stories(task_file(directory, task, split)):
                words |= story_words(story)
    return Vocabulary.of_words(words)


def story_example(story: Story, index: dict[str, int], punctuation: str = "tokens",
                  path: str | os.PathLike = "story") -> Example:
    """A story as one sequence: ``inputs`` [L] word ids (each question
    followed by one marker per answer word), ``targets`` [L] (the answer word
    at each marker, 0 elsewhere) and ``scored`` [L] (1 at the markers)."""
    inputs, targets, scored = [], [], []
    marker = index[MARKER]

    def word_id(word: str, line: Line) -> int:
        i = index.get(word)
        if i is None:
            raise BabiError(f"{path}:{line.source_line}: word {word!r} is not in the bAbI "
                            f"vocabulary ({len(index)} symbols)")
        return i

    for line in story.lines:
        for word in tokens(line.text, punctuation):
            inputs.append(word_id(word, line))
            targets.append(0)
            scored.append(0.0)
        for word in line.answer or ():
            inputs.append(marker)
            targets.append(word_id(word.lower(), line))
            scored.append(1.0)
    return make_example(inputs, targets, scored)


def permute_entities(example: Example, groups: list[np.ndarray], symbols: int,
                     rng: np.random.Generator) -> Example:
    """`example` with each group's words renamed by one random permutation
    of the group, in its inputs [L] and its answers (targets [L] where
    scored): the same story about other actors, rooms and objects. `groups`
    are disjoint arrays of word ids below `symbols`."""
    table = np.arange(symbols, dtype=np.int32)
    for group in groups:
        table[group] = rng.permutation(group)
    targets = np.where(example.scored > 0, table[example.targets], example.targets)
    return Example(table[example.inputs], targets.astype(np.int32), example.scored)


def geometric_edges(shortest: int, longest: int, buckets: int) -> list[int]:
    """`buckets` padding edges spaced geometrically from `shortest` to
    `longest`, so a batch is padded by at most the factor (longest /
    shortest) ** (1 / buckets), however its lengths are spread (joint bAbI:
    most stories are short, and a batch of 32 almost always holds one of the
    long ones of tasks 2, 3 or 5)."""
    if buckets < 1:
        raise ValueError(f"length_buckets must be >= 1, got {buckets}")
    ratio = (longest / shortest) ** (1 / buckets)
    return sorted({int(np.ceil(shortest * ratio ** k - 1e-9)) for k in range(1, buckets + 1)}
                  | {longest})


def interleave(groups: list[list]) -> list:
    """Round-robin over the lists (the first of each, then the second, ...)."""
    out = []
    for i in range(max(map(len, groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


class BabiTask(SymbolSequenceTask):
    """The bAbI tasks in the DNC paper's protocol (module docstring)."""

    metric_names = ("word_error_rate", "story_error", "errors", "cost")

    def __init__(self, tasks: tuple[int, ...] | str = "all", train_size: str = "10k",
                 train_stories: int | None = None, punctuation: str = "tokens",
                 inputs: str = "one_hot", embedding_size: int = 64,
                 data_dir: str | None = None, length_buckets: int = 8,
                 permute_entities: bool = False):
        chosen = ALL_TASKS if tasks == "all" else tuple(tasks)
        if isinstance(tasks, str) and tasks != "all":
            raise ValueError(f"babi: tasks must be 'all' or a list of task numbers, got {tasks!r}")
        bad = [t for t in chosen if t not in TASK_NAMES]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"babi: tasks must be distinct numbers 1..20, got {list(chosen)}")
        if train_size not in TRAIN_SIZES:
            raise ValueError(f"babi: train_size must be 1k or 10k, got {train_size!r}")
        if punctuation not in ("tokens", "drop"):
            raise ValueError(f"babi: punctuation must be tokens or drop, got {punctuation!r}")
        if inputs not in ("one_hot", "embedding"):
            raise ValueError(f"babi: inputs must be one_hot or embedding, got {inputs!r}")
        if train_stories is not None and train_stories < 1:
            raise ValueError(f"babi: train_stories must be >= 1, got {train_stories}")
        self.tasks = tuple(sorted(chosen))
        self.train_size, self.punctuation = train_size, punctuation
        self.directory = data_file(data_dir, DATA_DIR)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"bAbI data directory not found: {self.directory}")
        self.vocabulary = read_vocabulary(self.directory)
        index = self.vocabulary.index
        self.input_symbols = self.output_symbols = list(self.vocabulary.symbols)
        self.vocab_size = self.input_size = len(self.input_symbols)
        self.one_hot = inputs == "one_hot"
        self.entity_groups = ([np.array([index[w] for w in g if w in index], np.int32)
                               for g in ENTITY_GROUPS] if permute_entities else [])
        self.embedding = None if self.one_hot else Embedding(self.input_symbols, embedding_size)
        self.train_by_task: dict[int, list[Example]] = {}
        self.test_by_task: dict[int, list[Example]] = {}
        for task in self.tasks:
            train = task_file(self.directory, task, "train")
            test = task_file(self.directory, task, "test")
            stories = read_babi(train, TRAIN_SIZES[train_size])[:train_stories]
            self.train_by_task[task] = [story_example(s, index, punctuation, train)
                                        for s in stories]
            self.test_by_task[task] = [story_example(s, index, punctuation, test)
                                       for s in read_babi(test)]
        self.train_examples = interleave([self.train_by_task[t] for t in self.tasks])
        self.heldout_examples = interleave([self.test_by_task[t] for t in self.tasks])
        self._setup(length_buckets)
        longest = self.max_length  # of training and test stories
        self.max_length = max(len(e.inputs) for e in self.train_examples)
        self.edges = geometric_edges(self.min_length, longest, length_buckets)
        self._task_of: dict[bytes, int] | None = None

    @property
    def epoch_stories(self) -> int:
        """Training stories in one epoch (every one once)."""
        return len(self.train_examples)

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A training batch: each story from a task drawn uniformly, then one
        of its stories uniformly, its entities renamed if `permute_entities`;
        with `length`, stories of exactly that many steps (as
        `SymbolSequenceTask.sample`, never renamed)."""
        if length is not None:
            return super().sample(rng, batch_size, length)
        picks = rng.integers(0, len(self.tasks), size=batch_size)
        examples = []
        for k in picks:
            pool = self.train_by_task[self.tasks[k]]
            example = pool[rng.integers(0, len(pool))]
            if self.entity_groups:
                example = permute_entities(example, self.entity_groups, self.vocab_size, rng)
            examples.append(example)
        return self.make_batch(examples)

    def step_labels(self, batch: Batch, column: int = 0) -> list[str]:
        """The input symbol of each unpadded step of one story of `batch`
        (the words on a figure's time axis)."""
        ids = np.asarray(batch.inputs)[:, column]
        ids = ids.argmax(-1) if ids.ndim == 2 else ids
        steps = int(np.asarray(batch.step_mask)[:, column].sum())
        return [self.input_symbols[int(i)] for i in ids[:steps]]

    def loss(self, ys, batch: Batch):
        """Cross-entropy at the answer steps; per story [B]: word_error_rate,
        story_error, errors, cost."""
        loss, m = class_loss(ys, batch.targets, batch.loss_mask)
        return loss, {"word_error_rate": m["symbol_error_rate"], "story_error": m["sequence_error"],
                      "errors": m["errors"], "cost": m["cost"]}

    def splits(self, train_limit: int | None = None) -> dict[str, list[Batch]]:
        """``test``: every test story; ``train``: the first `train_limit`
        training stories (all if None), tasks interleaved."""
        return {"train": self.train_eval_batches(64, train_limit),
                "test": self._fixed_batches(self.heldout_examples, 64)}

    def task_of(self, ids: np.ndarray) -> int:
        """The task whose story has token ids `ids` [L] (`BabiError` if none)."""
        if self._task_of is None:
            self._task_of = {}
            for by_task in (self.train_by_task, self.test_by_task):
                for task, examples in by_task.items():
                    for e in examples:
                        self._task_of.setdefault(e.inputs.tobytes(), task)
        task = self._task_of.get(np.asarray(ids, np.int32).tobytes())
        if task is None:
            raise BabiError(f"babi: a scored story of {len(ids)} steps is none of this task's "
                            f"stories (tasks {list(self.tasks)})")
        return task

    def scores(self, outputs: list[tuple[np.ndarray, Batch]]) -> dict[str, float]:
        """Per task ``qaN_error`` (word error rate), ``mean_error`` over the
        tasks, ``failed_tasks`` (error > 5%), pooled ``word_error_rate``,
        ``question_error`` and the counts, of ``(ys [T, B, V], batch)`` pairs."""
        words: dict[int, list[int]] = {t: [0, 0] for t in self.tasks}  # [wrong, total]
        questions = [0, 0]
        for ys, batch in outputs:
            ids = np.asarray(batch.inputs)
            ids = ids.argmax(-1) if ids.ndim == 3 else ids
            guess = np.asarray(ys).argmax(-1)
            lengths = np.asarray(batch.step_mask).sum(0)
            marker = self.vocabulary.index[MARKER]
            for b, L in enumerate(lengths):
                task = self.task_of(ids[:L, b])
                scored = np.asarray(batch.loss_mask)[:L, b] > 0
                wrong = (guess[:L, b] != np.asarray(batch.targets)[:L, b]) & scored
                words[task][0] += int(wrong.sum())
                words[task][1] += int(scored.sum())
                # a question is a run of consecutive marker steps
                starts = np.flatnonzero(scored & ~np.r_[False, ids[:L - 1, b] == marker])
                for s, e in zip(starts, np.r_[starts[1:], L]):
                    questions[0] += bool(wrong[s:e].any())
                    questions[1] += 1
        per_task = {t: w / n for t, (w, n) in words.items() if n}
        out = {f"qa{t}_error": e for t, e in per_task.items()}
        total = sum(n for _, n in words.values())
        out.update({
            "mean_error": float(np.mean(list(per_task.values()))) if per_task else 0.0,
            "failed_tasks": float(sum(e > FAILED for e in per_task.values())),
            "word_error_rate": sum(w for w, _ in words.values()) / max(total, 1),
            "question_error": questions[0] / max(questions[1], 1),
            "answer_words": float(total), "questions": float(questions[1]),
            "tasks": float(len(per_task))})
        return out
