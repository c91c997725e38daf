"""Sentence memorisation: corpus readers, layout, curriculum, split, errors."""

import numpy as np
import pytest

from mannlab.config import parse_config
from mannlab.tasks.sentences import (
    RESERVED,
    SentencesTask,
    read_sentences,
    select_shortest,
)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("hello there\nab\n\nab\nxyz\n  ba  \nlonger sentence here\n")
    return path


def test_select_shortest_dedups_and_orders(corpus):
    sents = read_sentences(corpus)
    assert sents == ["hello there", "ab", "ab", "xyz", "ba", "longer sentence here"]
    assert select_shortest(sents, 3) == ["ab", "ba", "xyz"]
    assert select_shortest(sents, 10, max_chars=3) == ["ab", "ba", "xyz"]


def test_layout_of_one_sentence(corpus):
    task = SentencesTask(str(corpus), count=3, heldout_every=0, echo_fraction=0.0)
    sym = task.input_symbols
    assert sym[:4] == list(RESERVED) and task.chars == ["a", "b", "x", "y", "z"]
    assert task.input_size == task.output_size == 9
    ex = task.encode("ab")
    assert [sym[i] for i in ex.inputs] == ["<s>", "a", "b", "<sep>", "<empty>", "<empty>"]
    assert [sym[i] for i in ex.targets] == ["<empty>"] * 3 + ["a", "b", "</s>"]
    assert ex.scored.tolist() == [1.0] * 6
    answer = SentencesTask(str(corpus), count=3, heldout_every=0, score="answer")
    assert answer.encode("ab").scored.tolist() == [0, 0, 0, 1, 1, 1]
    assert task.decode(ex.targets) == "ab"


def test_batches_pad_and_mask(corpus):
    task = SentencesTask(str(corpus), count=3, heldout_every=0, echo_fraction=0.0,
                         length_buckets=1)
    (b,) = task.train_eval_batches(8)
    assert b.inputs.shape == (8, 3, 9)  # "xyz": 2 * 3 + 2 steps
    assert b.step_mask.sum(0).tolist() == [6, 6, 8]
    assert not b.inputs[6:, 0].any() and not b.loss_mask[6:, 0].any()
    assert (b.inputs.sum(-1) == b.step_mask).all()  # one-hot exactly on real steps
    s = task.sample(np.random.default_rng(0), 4, length=6)
    assert s.inputs.shape == (6, 4, 9)
    assert [task.has_length(n) for n in (6, 7, 8, 24)] == [True, False, True, False]


def test_echo_curriculum(corpus):
    task = SentencesTask(str(corpus), count=3, heldout_every=0, echo_fraction=1.0)
    b = task.sample(np.random.default_rng(0), 16)
    sym = task.input_symbols
    assert b.step_mask.sum(0).tolist() == [4] * 16
    for col in range(16):
        inp = [sym[i] for i in b.inputs[:4, col].argmax(-1)]
        out = [sym[i] for i in b.targets[:4, col]]
        assert inp[0] == "<s>" and inp[2:] == ["<sep>", "<empty>"]
        assert out == ["<empty>", "<empty>", inp[1], "</s>"] and inp[1] in task.chars
    none = SentencesTask(str(corpus), count=3, heldout_every=0, echo_fraction=0.0)
    assert (none.sample(np.random.default_rng(0), 16).step_mask.sum(0) >= 6).all()


def test_heldout_split(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join("x" * n for n in range(1, 11)) + "\n")
    task = SentencesTask(str(path), count=10, heldout_every=3)
    assert task.heldout_sentences == ["xxx", "x" * 6, "x" * 9]
    assert len(task.train_sentences) == 7
    assert sum(b.inputs.shape[1] for b in task.eval_batches(2)) == 3
    again = SentencesTask(str(path), count=10, heldout_every=3)
    assert all(np.array_equal(a.inputs, b.inputs)
               for a, b in zip(task.eval_batches(2), again.eval_batches(2)))


def test_conllu_source(tmp_path):
    path = tmp_path / "s.conllu"
    path.write_text("# text = Hi there.\n1\tHi\t_\tINTJ\t_\t_\t0\troot\t_\t_\n"
                    "2\tthere\t_\tADV\t_\t_\t1\tadvmod\t_\tSpaceAfter=No\n"
                    "3\t.\t_\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n"
                    "1\tYes\t_\tINTJ\t_\t_\t0\troot\t_\t_\n")
    assert read_sentences(path) == ["Hi there.", "Yes"]


def test_empty_file_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt"):
        SentencesTask(str(empty))
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match=r"no sentences in .*empty\.txt"):
        read_sentences(empty)


def test_metrics(corpus):
    task = SentencesTask(str(corpus), count=3, heldout_every=0)
    (b,) = task.train_eval_batches(8)
    ys = np.eye(task.output_size)[b.targets] * 10.0
    ys[4, 2] = np.roll(ys[4, 2], 1)  # one wrong symbol in sequence 2
    _, m = task.loss(ys, b)
    assert np.asarray(m["sequence_error"]).tolist() == [0, 0, 1]
    assert np.asarray(m["errors"]).tolist() == [0, 0, 1]
    assert task.metric_names[0] == "sequence_error"
    s = task.scores([(ys, b)])
    assert s["accuracy"] == pytest.approx(1 - 1 / 20)


def test_config(corpus):
    cfg = parse_config({"task": {"name": "sentences", "path": str(corpus), "count": 3,
                                 "heldout_every": 0}, "model": {"name": "lstm"}})
    assert cfg.task.build().input_size == 9


def test_default_corpus():
    task = SentencesTask()
    assert len(task.train_sentences) + len(task.heldout_sentences) == 500
    assert len(task.heldout_sentences) == 50
