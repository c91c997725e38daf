"""POS tagging task on a tiny treebank: vocabulary, batches, the baseline."""

import numpy as np
import pytest

from mannlab.config import parse_config
from mannlab.tasks.conllu import ConlluError
from mannlab.tasks.pos import UNK, UPOS_TAGS, POSTask, most_frequent_tags


def conllu(*sentences):
    out = []
    for words in sentences:
        out.append("# text = " + " ".join(w for w, _ in words))
        for i, (w, t) in enumerate(words, 1):
            out.append(f"{i}\t{w}\t_\t{t}\t_\t_\t0\tdep\t_\t_")
        out.append("")
    return "\n".join(out) + "\n"


TRAIN = conllu([("The", "DET"), ("dog", "NOUN"), ("runs", "VERB")],
               [("the", "DET"), ("run", "NOUN")],
               [("Dogs", "NOUN"), ("run", "VERB"), (".", "PUNCT")],
               [("do", "AUX"), ("n't", "PART"), ("run", "VERB")],
               [("Sleep", "VERB")])
DEV = conllu([("The", "DET"), ("cat", "NOUN"), ("runs", "VERB")],
             [("Run", "VERB"), (".", "PUNCT")])


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.conllu").write_text(TRAIN)
    (tmp_path / "dev.conllu").write_text(DEV)
    return str(tmp_path / "train.conllu"), str(tmp_path / "dev.conllu")


def test_vocab_and_ids(files):
    task = POSTask(*files, min_count=2)
    assert task.vocab == ["<pad>", "<unk>", "run", "the"]  # run x3, the x2
    assert task.vocab_size == task.input_size == 4 and task.output_size == 17
    np.testing.assert_array_equal(task.encode(["THE", "Run", "cat"]), [3, 2, 1])
    cased = POSTask(*files, lowercase=False, min_count=1)
    assert "The" in cased.vocab and "the" in cased.vocab and "Sleep" in cased.vocab
    assert cased.encode(["sleep"])[0] == cased.vocab.index(UNK)


def test_batches_are_token_ids(files):
    task = POSTask(*files, min_count=2, length_buckets=1)
    (b,) = task.eval_batches(8)
    assert b.inputs.dtype == np.int32 and b.inputs.shape == (3, 2)
    # sorted by length: "Run ." (2 words) then "The cat runs"
    assert b.inputs[:, 0].tolist() == [2, 1, 0] and b.inputs[:, 1].tolist() == [3, 1, 1]
    tags = [UPOS_TAGS.index(t) for t in ("VERB", "PUNCT")]
    assert b.targets[:2, 0].tolist() == tags
    assert b.step_mask[:, 0].tolist() == [True, True, False]
    assert b.loss_mask[:, 0].tolist() == [1.0, 1.0, 0.0] and b.loss_mask[:, 1].all()
    s = task.sample(np.random.default_rng(0), 5)
    assert s.inputs.shape == (3, 5)
    assert task.sample(np.random.default_rng(0), 2, length=1).inputs.shape == (1, 2)
    with pytest.raises(ValueError, match="no training sequence of length 9"):
        task.sample(np.random.default_rng(0), 2, length=9)


def test_most_frequent_tag_baseline_by_hand(files):
    task = POSTask(*files)
    table, default = most_frequent_tags(task.train_sentences, lowercase=True)
    assert table["run"] == "VERB" and table["the"] == "DET" and default == "VERB"
    base = task.most_frequent_tag_baseline()
    # train: only "the run" -> run tagged VERB (gold NOUN) is wrong: 11 / 12
    assert base["train"]["accuracy"] == pytest.approx(11 / 12)
    assert base["train"]["micro_f1"] == pytest.approx(11 / 12)
    # per class F1: DET 1 (2), NOUN p 1 r 2/3 (3), VERB p .8 r 1 (4), PUNCT AUX PART 1
    f1 = (2 * 1 + 3 * 0.8 + 4 * (2 * 0.8 / 1.8) + 3 * 1) / 12
    assert base["train"]["weighted_f1"] == pytest.approx(f1)
    # dev: "cat" unknown -> VERB (gold NOUN); the rest right: 4 / 5
    assert base["heldout"]["accuracy"] == pytest.approx(0.8)
    assert base["heldout"]["tokens"] == 5


def test_unknown_tag_and_malformed_file(tmp_path, files):
    bad = tmp_path / "bad.conllu"
    bad.write_text(conllu([("a", "DET")], [("b", "NOUN"), ("c", "FOO")]))
    with pytest.raises(ConlluError, match=r"bad\.conllu:4: .*unknown UPOS tag 'FOO'"):
        POSTask(str(bad), files[1])
    bad.write_text("1\ta\t_\tDET\n")
    with pytest.raises(ConlluError, match=r"bad\.conllu:1:"):
        POSTask(str(bad), files[1])


def test_config_builds(files):
    cfg = parse_config({"task": {"name": "pos", "train_path": files[0],
                                 "heldout_path": files[1], "min_count": 1},
                        "model": {"name": "lstm"}})
    task = cfg.task.build()
    assert task.vocab_size == 2 + 9  # the dog runs run dogs . do n't sleep


def test_ewt_baseline_matches_paper():
    base = POSTask().most_frequent_tag_baseline()
    assert base["train"]["micro_f1"] == pytest.approx(0.92, abs=0.01)  # paper: 0.92
