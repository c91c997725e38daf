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
    base = task.baselines()["most-frequent tag"]
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
    base = POSTask().baselines()["most-frequent tag"]
    assert base["train"]["micro_f1"] == pytest.approx(0.92, abs=0.01)  # paper: 0.92


def test_word_only_oracle_by_hand(files):
    """The per-id majority tag on the split itself: through min_count 2, the
    words seen once share <unk> and so share one guess."""
    task = POSTask(*files, min_count=2)
    oracle = task.baselines()["word-only oracle"]
    # train ids: the x2 (DET DET), run x3 (NOUN VERB VERB: one wrong), <unk> x7
    # (dog NOUN, runs VERB, dogs NOUN, . PUNCT, do AUX, n't PART, sleep VERB:
    # majority NOUN or VERB, 2 each -> NOUN, the lower index; 5 wrong): 6 / 12
    assert oracle["train"]["accuracy"] == pytest.approx(6 / 12)
    every_word = POSTask(*files, min_count=1).baselines()["word-only oracle"]
    assert every_word["train"]["accuracy"] == pytest.approx(11 / 12)  # only "run" ambiguous
    assert every_word["heldout"]["accuracy"] == 1.0  # no dev word has two tags


def vectors_file(tmp_path):
    path = tmp_path / "vectors.txt"
    # the vectors know "the", "cat" (a dev-only word) and "Run" (cased)
    path.write_text("3 2\nthe 0.5 -1\ncat 7 7\nRun 2 3\n")  # a word2vec header first
    return str(path)


def test_with_vectors_held_out_words_get_their_vector(tmp_path, files):
    task = POSTask(*files, vectors=vectors_file(tmp_path), min_count=1)
    assert task.embedding is None and task.input_size == 2
    # own ids: training words the vectors lack (every one: min_count 1)
    assert "the" not in task.word_index and "run" not in task.word_index
    assert "dog" in task.word_index and "sleep" in task.word_index
    own = len(task.word_index)
    cat, the, run, unk = task.encode(["cat", "THE", "run", "zebra"])
    assert (cat, the, run) == (own + 1, own + 0, own + 2)  # cat: a held-out word, not <unk>
    assert unk == task.word_index[UNK]
    np.testing.assert_allclose(task.lookup(np.array([cat, the, run])),
                               [[7, 7], [0.5, -1], [2, 3]])
    (b,) = [b for b in task.eval_batches(8)]
    assert b.inputs.dtype == np.float32 and b.inputs.shape == (3, 2, 2)
    np.testing.assert_allclose(b.inputs[:, 1], [[0.5, -1], [7, 7], task.lookup(
        task.encode(["runs"]))[0]])  # "The cat runs"
    assert not b.inputs[2, 0].any()  # padding after "Run ."
    assert task.inputs_fingerprint["vectors"]["words"] == 3
    rare = POSTask(*files, vectors=vectors_file(tmp_path), min_count=2)
    assert list(rare.word_index) == ["<pad>", "<unk>"]  # every word seen twice has a vector


def test_missing_or_malformed_vectors_name_file_and_line(tmp_path, files):
    from mannlab.tasks.vectors import VectorsError, read_text_vectors

    with pytest.raises(VectorsError, match="word vectors file not found: .*nope.txt"):
        POSTask(*files, vectors=str(tmp_path / "nope.txt"))
    vec = tmp_path / "glove.txt"
    for text, message in (("the 0.5 -1\nrun 2\n", r"glove\.txt:2: expected 2 values"),
                          ("the 0.5 -1\nrun 2 x\n", r"glove\.txt:2: not a number: 'x'"),
                          ("", "no word vectors"),
                          ("the\n", r"glove\.txt:1: word 'the' has no values")):
        vec.write_text(text)
        with pytest.raises(VectorsError, match=message):
            read_text_vectors(vec)


def test_a_learned_embedding_starts_with_unit_variance(files):
    import jax

    from mannlab.models.embedded import wrap_for_task
    from mannlab.models.lstm import LSTM

    task = POSTask(*files, min_count=1, embedding_size=512)
    model = wrap_for_task(lambda i, o, key: LSTM(i, o, 4, 1, key=key), task,
                          jax.random.PRNGKey(0))
    assert float(np.std(np.asarray(model.weight))) == pytest.approx(1.0, abs=0.05)


def test_score_every_logs_a_learning_curve_in_f1(tmp_path, files):
    import json

    import mannlab

    config = parse_config({
        "task": {"name": "pos", "train_path": files[0], "heldout_path": files[1],
                 "vectors": vectors_file(tmp_path), "min_count": 1, "length_buckets": 1},
        "model": {"name": "lstm", "hidden_size": 8},
        "train": {"optimizer": "adam", "learning_rate": 0.05, "batch_size": 4,
                  "max_steps": 200, "eval_every": 20, "score_every": 100, "eval_size": 2,
                  "log_every": 10, "converge_at": None, "log_images": False}})
    run = mannlab.train(config, run_dir=tmp_path / "run")
    records = [json.loads(line) for line in
               (run.path / "seed-0/metrics.jsonl").read_text().splitlines()]
    curve = [(r["split"], r["step"]) for r in records if r["split"].startswith("scores_")]
    assert curve == [("scores_train", 100), ("scores_heldout", 100), ("scores_train", 200),
                     ("scores_heldout", 200)]
    last = [r for r in records if r["split"] == "scores_train"][-1]
    assert last["micro_f1"] > 0.9  # 12 training tokens, learnt
    with pytest.raises(Exception, match=r"score_every \(25\) must be a multiple of eval_every"):
        parse_config({"task": {"name": "copy"}, "model": {"name": "lstm"},
                      "train": {"eval_every": 10, "score_every": 25}})
