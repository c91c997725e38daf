"""bAbI: the reader on hand-written stories, the DNC paper's sequence layout,
the vocabulary and the answer steps, the scores, the shipped data, and a
tiny DNC that learns task 1."""

import lzma
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from mannlab.config import ConfigError, load_config, parse_config
from mannlab.models.dnc import DNC
from mannlab.tasks.babi import (
    ALL_TASKS,
    MARKER,
    BabiError,
    BabiTask,
    Vocabulary,
    geometric_edges,
    permute_entities,
    read_babi,
    story_example,
    tokens,
)
from mannlab.tasks.seqdata import PACKAGED_DATA

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT.parent / "shared" / "data" / "babi"
"""The generation's own folder (with its separate 1k files), where it is at hand."""

STORY = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?\tbathroom\t1
4 John picked up the apple.
5 John took the football there.
6 What is John carrying?\tapple,football\t4 5
7 Mary went to the kitchen.
8 Where is Mary? \tkitchen\t7
1 The kitchen is north of the hallway.
2 How do you go from the hallway to the kitchen?\tn,n\t1
"""


def write(tmp_path, text, name="qa1_train.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reader_splits_stories_at_line_one_and_reads_questions(tmp_path):
    stories = read_babi(write(tmp_path, STORY))
    assert [len(s.lines) for s in stories] == [8, 2] and [s.start for s in stories] == [1, 9]
    first = stories[0]
    assert first.questions == 3 and not first.lines[0].is_question
    q = first.lines[5]
    assert q.text == "What is John carrying?" and q.answer == ("apple", "football")
    assert q.supports == (4, 5) and q.source_line == 6
    assert first.lines[7].answer == ("kitchen",)  # the published files' space before the tab
    assert stories[1].lines[1].answer == ("n", "n")
    assert len(read_babi(write(tmp_path, STORY), max_questions=2)[0].lines) == 6  # cut after it


@pytest.mark.parametrize("line, message", [
    ("Mary moved.", "expected 'ID text'"),
    ("2 Mary moved to the hallway.", "line number 2 out of sequence"),
    ("1 Where is Mary?\tbathroom\t1\textra", "3 tab-separated fields"),
    ("1 Where is Mary?\t\t1", "empty question or answer word"),
    ("1 Where is Mary?\tapple,\t1", "empty question or answer word"),
    ("1 Where is Mary?\tbathroom\tone", "supporting ids must be line numbers"),
    ("1 Where is Mary?\tbathroom\t1", "supporting id 1 is not an earlier line"),
])
def test_a_malformed_line_is_one_line_naming_the_file_and_line(tmp_path, line, message):
    path = write(tmp_path, "1 Mary moved to the bathroom.\n2 Mary went to the office.\n" + line
                 + "\n")
    with pytest.raises(BabiError) as err:
        read_babi(path)
    text = str(err.value)
    assert text.startswith(f"{path}:3: ") and message in text and "\n" not in text


def test_an_empty_file_and_an_unknown_word_name_the_file(tmp_path):
    with pytest.raises(BabiError, match="no stories"):
        read_babi(write(tmp_path, ""))
    story = read_babi(write(tmp_path, "1 Zed moved.\n"))[0]
    with pytest.raises(BabiError, match=r"x.txt:1: word 'zed' is not in the bAbI vocabulary"):
        story_example(story, Vocabulary.of_words(["moved"]).index, path="x.txt")


def test_a_story_is_one_sequence_with_a_marker_per_answer_word(tmp_path):
    story = read_babi(write(tmp_path, STORY))[0]
    words = {w for line in story.lines for w in tokens(line.text, "drop")}
    vocab = Vocabulary.of_words(words | {"apple", "football", "bathroom", "kitchen"})
    assert vocab.symbols[:3] == ("-", ".", "?") and list(vocab.symbols[3:]) == sorted(
        vocab.symbols[3:])
    ex = story_example(story, vocab.index)
    sym = vocab.symbols
    text = " ".join(sym[i] for i in ex.inputs)
    assert text == ("mary moved to the bathroom . john went to the hallway . where is mary ? - "
                    "john picked up the apple . john took the football there . what is john "
                    "carrying ? - - mary went to the kitchen . where is mary ? -")
    # the answer steps: the markers, and only they, are scored, with the answer words
    assert np.array_equal(ex.scored > 0, ex.inputs == vocab.index[MARKER])
    assert [sym[t] for t, s in zip(ex.targets, ex.scored) if s] == [
        "bathroom", "apple", "football", "kitchen"]
    dropped = story_example(story, vocab.index, "drop")
    assert len(dropped.inputs) == len(ex.inputs) - 8  # 5 full stops, 3 question marks


@pytest.fixture(scope="module")
def task8_19():
    return BabiTask(tasks=[8, 19], train_size="1k")


def test_the_task_over_shipped_data_vocabulary_batches_and_answer_mask(task8_19):
    task = task8_19
    assert task.input_size == task.output_size == 144 and task.embedding is None
    assert task.input_symbols[:3] == ["-", ".", "?"]
    assert {len(task.train_by_task[t]) for t in (8, 19)} == {200, 1000}  # 1,000 questions each
    batch = task.sample(np.random.default_rng(0), 6)
    T = batch.inputs.shape[0]
    assert batch.inputs.shape == (T, 6, 144) and batch.targets.shape == (T, 6)
    assert T in task.edges and batch.inputs.sum(-1).max() == 1.0
    marker = batch.inputs[..., task.vocabulary.index[MARKER]] > 0
    assert np.array_equal(batch.loss_mask > 0, marker)  # the answer steps are the markers
    assert not (batch.loss_mask * ~batch.step_mask).any()
    assert [task.tasks[i % 2] for i in range(4)] == [8, 19, 8, 19]
    assert [len(e.inputs) for e in task.heldout_examples[:2]] == [
        len(task.test_by_task[8][0].inputs), len(task.test_by_task[19][0].inputs)]


def test_step_labels_are_the_story_words(task8_19):
    batch = task8_19.make_batch(task8_19.test_by_task[19][:1])
    labels = task8_19.step_labels(batch)
    assert labels[:4] == ["the", "bedroom", "is", "north"] and labels[-3:] == ["?", "-", "-"]


def test_embedding_inputs_are_word_ids(tmp_path):
    task = BabiTask(tasks=[4], train_size="1k", inputs="embedding", embedding_size=8)
    batch = task.sample(np.random.default_rng(0), 3)
    assert batch.inputs.ndim == 2 and batch.inputs.dtype == np.int32
    assert task.embedding.size == 8 and len(task.embedding.vocab) == 144


def test_permuting_entities_renames_a_story_consistently(tmp_path):
    """`permute_entities`: one renaming per story, within each group, in the
    inputs and the answers alike; other words and the marker untouched."""
    story = read_babi(write(tmp_path, STORY))[0]
    words = ["-", ".", "?", "apple", "bathroom", "carrying", "football", "hallway", "is", "john",
             "kitchen", "mary", "moved", "picked", "the", "there", "to", "took", "up", "went",
             "what", "where"]
    index = {w: i for i, w in enumerate(words)}
    groups = [np.array([index["john"], index["mary"]], np.int32),
              np.array([index["bathroom"], index["hallway"], index["kitchen"]], np.int32)]
    example = story_example(story, index)
    seen = set()
    for seed in range(20):
        renamed = permute_entities(example, groups, len(words), np.random.default_rng(seed))
        table = {}
        for a, b in zip(np.concatenate([example.inputs, example.targets[example.scored > 0]]),
                        np.concatenate([renamed.inputs, renamed.targets[renamed.scored > 0]])):
            assert table.setdefault(int(a), int(b)) == int(b)  # one renaming per story
        for group in groups:
            assert sorted(table.get(int(g), int(g)) for g in group if int(g) in table) == \
                sorted(int(g) for g in group if int(g) in table)
        others = set(table) - {int(g) for group in groups for g in group}
        assert all(table[w] == w for w in others)
        assert np.array_equal(renamed.scored, example.scored)
        assert np.array_equal(renamed.targets[example.scored == 0], example.targets[example.scored == 0])
        seen.add(table[index["mary"]])
    assert seen == {index["john"], index["mary"]}  # both renamings occur


def test_training_stories_are_renamed_only_with_the_option():
    plain = BabiTask(tasks=[1], train_size="1k", train_stories=5)
    renamed = BabiTask(tasks=[1], train_size="1k", train_stories=5, permute_entities=True)
    a, b = (t.sample(np.random.default_rng(0), 16) for t in (plain, renamed))
    assert not np.array_equal(a.inputs, b.inputs)
    assert [len(g) for g in renamed.entity_groups] == [2, 2, 6, 3] and plain.entity_groups == []
    # evaluation stories are never renamed
    for x, y in zip(plain.splits()["test"], renamed.splits()["test"]):
        assert np.array_equal(x.inputs, y.inputs)
    c = parse_config({"task": {"name": "babi", "tasks": [1], "permute_entities": True},
                      "model": {"name": "lstm"}})
    assert c.task.build().entity_groups


def test_scores_per_task_mean_and_failed_tasks(task8_19):
    task = task8_19
    test = task.splits()["test"]
    perfect = [(np.eye(task.output_size)[b.targets], b) for b in test]
    s = task.scores(perfect)
    assert s["qa8_error"] == s["qa19_error"] == s["mean_error"] == s["failed_tasks"] == 0.0
    assert s["questions"] == 2000 and s["answer_words"] > 2000  # lists and paths: several words
    # wrong on every answer step of task 19's stories only
    spoiled = []
    for ys, b in perfect:
        ys = ys.copy()
        for j in range(b.inputs.shape[1]):
            L = int(b.step_mask[:, j].sum())
            if task.task_of(b.inputs[:L, j].argmax(-1)) == 19:
                ys[:, j] = np.roll(ys[:, j], 1, axis=-1)
        spoiled.append((ys, b))
    s = task.scores(spoiled)
    assert s["qa8_error"] == 0.0 and s["qa19_error"] == 1.0 and s["failed_tasks"] == 1.0
    assert s["mean_error"] == 0.5 and s["question_error"] == 0.5
    other = BabiTask(tasks=[1], train_size="1k").splits()["test"][:1]
    with pytest.raises(BabiError, match="none of this task's stories"):
        task.scores([(np.zeros(b.inputs.shape[:2] + (144,)), b) for b in other])


def test_geometric_edges_bound_the_padding():
    edges = geometric_edges(24, 749, 8)
    assert edges[-1] == 749 and len(edges) == 8 and edges[0] > 24
    assert max(b / a for a, b in zip([24] + edges, edges)) < 1.55  # (749 / 24) ** (1 / 8)
    assert geometric_edges(85, 85, 4) == [85]


def test_configs_build_and_bad_values_are_one_line(tmp_path):
    c = parse_config({"task": {"name": "babi", "tasks": [1], "train_size": "1k"},
                      "model": {"name": "lstm"}})
    assert c.task.build().tasks == (1,)
    for task, field in (({"tasks": [0]}, "task.tasks"), ({"tasks": [1, 1]}, "task"),
                        ({"train_size": "2k"}, "task.train_size"),
                        ({"inputs": "glove"}, "task.inputs")):
        with pytest.raises(ConfigError) as err:
            parse_config({"task": {"name": "babi", **task}, "model": {"name": "lstm"}})
        assert field in str(err.value) and "\n" not in str(err.value)
    for name in ("dnc-babi", "dnc-md-babi", "ntm-babi", "lstm-babi"):
        config = load_config(ROOT / "configs" / f"{name}.yaml")
        assert config.task.name == "babi" and config.task.tasks != "all"
        joint = load_config(ROOT / "configs" / f"{name}.yaml", ["task.tasks=all"])
        assert joint.task.tasks == "all"
    md = load_config(ROOT / "configs" / "dnc-md-babi.yaml").model
    assert md.content_masking and md.deallocation_erase


def test_the_packaged_files_and_vocabulary():
    babi = PACKAGED_DATA / "babi"
    for name in ("LICENSE.txt", "PATENTS.txt", "README.md", "PROVENANCE.md", "vocabulary.txt"):
        assert (babi / name).is_file(), name
    for t in ALL_TASKS:
        for split in ("train", "test"):
            assert (babi / f"qa{t}_{split}.txt.xz").is_file(), (t, split)
    words = (babi / "vocabulary.txt").read_text().split()
    assert len(words) == 141 and words == sorted(set(words))


@pytest.mark.slow
def test_all_20_shipped_tasks_parse_with_the_counts_and_the_vocabulary():
    """Every file parses; 10,000 / 1,000 questions; the vocabulary is exactly
    the words used; the 1k prefix equals the generation's 1k file; no story
    occurs in two tasks (`scores` tells tasks apart by their stories)."""
    start = time.perf_counter()
    task = BabiTask(tasks="all", train_size="10k")
    used = {int(i) for e in task.train_examples + task.heldout_examples for i in e.inputs}
    used |= {int(t) for e in task.train_examples + task.heldout_examples
             for t, s in zip(e.targets, e.scored) if s}
    assert used == set(range(task.input_size))
    for t in ALL_TASKS:
        assert sum(e.scored.sum() > 0 and int((np.diff(np.r_[0, e.scored]) > 0).sum())
                   for e in task.test_by_task[t]) == 1000
    seen: dict[bytes, int] = {}
    for by_task in (task.train_by_task, task.test_by_task):
        for t, examples in by_task.items():
            for e in examples:
                assert seen.setdefault(e.inputs.tobytes(), t) == t
    if GENERATED.is_dir():
        for t in ALL_TASKS:
            ours = read_babi(PACKAGED_DATA / "babi" / f"qa{t}_train.txt.xz", 1000)
            with lzma.open(GENERATED / f"qa{t}_train_1k.txt.xz", "rt") as f:
                theirs = f.read()
            lines = [f"{line.id} {line.text}" for s in ours for line in s.lines]
            assert [x.split("\t")[0].strip() for x in theirs.splitlines()] == lines, t
    print(f"all 20 tasks (10k) in {time.perf_counter() - start:.1f} s")


@pytest.mark.slow
def test_a_tiny_dnc_learns_task_1_from_200_stories():
    """A small DNC, Adam, 200 training stories of task 1 learns beyond the
    answers' prior: its word error on task 1's 200 test stories (1,000
    questions) is at least 0.15 below that of always giving the most
    frequent training answer. (The issue's < 20% is not reached from 200
    stories: small DNCs overfit at 54-57%; docs/babi.md.)"""
    task = BabiTask(tasks=[1], train_size="1k", train_stories=200)
    model = DNC(task.input_size, task.output_size, controller_size=64, memory_size=16,
                memory_width=16, read_heads=2, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    optimizer = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(3e-3))
    opt_state = optimizer.init(params)

    def outputs(p, batch):
        m = eqx.combine(p, static)
        return m(batch.inputs, m.init_state(batch.inputs.shape[1]), batch.step_mask)[0]

    def loss_fn(p, batch):
        return task.loss(outputs(p, batch), batch)[0]

    @jax.jit
    def step(p, s, batch):
        grads = jax.grad(loss_fn)(p, batch)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    run = jax.jit(outputs)
    test = task.splits()["test"]
    rng = np.random.default_rng(0)
    train = task.splits()["train"]
    answers = np.concatenate([b.targets[b.loss_mask > 0] for b in train])
    prior = np.bincount(answers).argmax()
    prior_error = float(np.mean(np.concatenate([b.targets[b.loss_mask > 0] for b in test])
                                != prior))
    start, error = time.perf_counter(), None
    for i in range(1500):
        params, opt_state = step(params, opt_state, task.sample(rng, 32))
        if i % 100 == 99:
            error = task.scores([(np.asarray(run(params, b)), b) for b in test])["qa1_error"]
            if error < prior_error - 0.15:
                break
    print(f"steps {i + 1}, {time.perf_counter() - start:.1f} s, test word error {error:.3f}, "
          f"most frequent answer's {prior_error:.3f}")
    assert error < prior_error - 0.15, (f"task 1 test word error {error} after {i + 1} steps "
                                        f"(most frequent answer: {prior_error})")
