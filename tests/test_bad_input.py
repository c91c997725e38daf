"""Bad input: config files, overrides and data files. Every error is one
line naming the file (and line) or the field, and the value."""

import gzip
import json
import lzma

import pytest

from mannlab.config import ConfigError, find_config, load_config
from mannlab.tasks.conllu import read_conllu
from mannlab.tasks.logic import LogicTask
from mannlab.tasks.pos import POSTask
from mannlab.tasks.sentences import SentencesTask, read_sentences
from mannlab.tasks.seqdata import DataError

OK = "task: {name: copy}\nmodel: {name: lstm}\n"


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def _write(tmp_path, data, name="c.yaml"):
    path = tmp_path / name
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


# ---------------------------------------------------------------- config files
def test_a_directory_as_config(tmp_path):
    for call in (load_config, find_config):
        with pytest.raises(ConfigError) as err:
            call(tmp_path)
        assert _one_line(err) == f"{tmp_path}: is a directory, not a config file"


def test_a_config_that_is_not_utf8(tmp_path):
    path = _write(tmp_path, b"task: {name: copy}\nmodel: {name: lstm}  # \xff\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert _one_line(err) == f"{path}: not UTF-8 text (byte 0xff on line 2)"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_config(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, ["seed=1"])
    assert _one_line(err).startswith(f"{path}: empty config")


@pytest.mark.parametrize("text", ["- task\n- model\n", "just words\n"])
def test_a_config_that_is_not_a_mapping_even_with_overrides(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="expected a mapping") as err:
        load_config(path, ["seed=1"])
    assert _one_line(err).startswith(str(path))


@pytest.mark.parametrize("text, key, line, first", [
    ("seed: 1\ntask: {name: copy}\nmodel: {name: lstm}\nseed: 2\n", "seed", 4, 1),
    ("task:\n  name: copy\n  max_length: 5\n  max_length: 9\nmodel: {name: lstm}\n",
     "max_length", 4, 3),
    (("task: {name: copy}\nmodel: {name: lstm}\ntrain:\n  mann_rl:\n    gamma: 0.5\n"
     "    gamma: 0.9\n"), "gamma", 6, 5),
    ("task: {name: copy, name: copy}\nmodel: {name: lstm}\n", "name", 1, 1),
])
def test_duplicate_keys_are_refused_at_any_depth(tmp_path, text, key, line, first):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert _one_line(err) == (f"{path}: not valid YAML: duplicate key {key!r} on line {line} "
                              f"(first on line {first})")


def test_merge_keys_may_still_override(tmp_path):
    from mannlab.config import read_yaml

    assert read_yaml("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n") == {"a": {"b": 1}, "c": {"b": 2}}


def test_a_byte_order_mark_is_fine(tmp_path):
    assert load_config(_write(tmp_path, b"\xef\xbb\xbf" + OK.encode())).task.name == "copy"


@pytest.mark.parametrize("seed, message", [
    ("-1", "seed: Input should be greater than or equal to 0 (got -1)"),
    (str(2**40), f"seed: Input should be less than 2147483648 (got {2**40})"),
    (str(2**32), f"seed: Input should be less than 2147483648 (got {2**32})"),
])
def test_seeds_out_of_range(tmp_path, seed, message):
    path = _write(tmp_path, OK)
    with pytest.raises(ConfigError) as err:
        load_config(path, [f"seed={seed}"])
    assert _one_line(err) == f"{path}: {message}"
    assert load_config(path, [f"seed={2**31 - 1}"]).seed == 2**31 - 1


def test_seeds_out_of_range_before_any_run_directory(tmp_path):
    from mannlab import api

    with pytest.raises(ConfigError, match=r"seed: .*\(got -1\)"):
        api.train(_write(tmp_path, OK), ["seed=-1"], run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, message", [
    ("=5", "override '=5': no key before '='"),
    (" =5", "override ' =5': no key before '='"),
    ("task..max_length=5", "override 'task..max_length=5': empty name in key 'task..max_length'"),
    ("train.=5", "override 'train.=5': empty name in key 'train.'"),
    ("seed=[1", ("override 'seed=[1': not a YAML value (expected ',' or ']', but got "
                "'<stream end>' (line 1, column 3))")),
    ("task={a: 1, a: 2}", "override 'task={a: 1, a: 2}': not a YAML value (duplicate key 'a'"),
])
def test_bad_overrides_are_named(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, OK), [override])
    assert _one_line(err).startswith(message)


@pytest.mark.parametrize("value, shown", [(".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan")])
def test_non_finite_numbers_are_refused(tmp_path, value, shown):
    path = _write(tmp_path, OK)
    with pytest.raises(ConfigError) as err:
        load_config(path, [f"train.learning_rate={value}"])
    assert _one_line(err) == (f"{path}: train.learning_rate: Input should be a finite number "
                              f"(got {shown})")


# ---------------------------------------------------------------- data files
WORD = "1\t{}\t_\tNOUN\t_\t_\t0\troot\t_\t_\n"
CONLLU = "# text = yes\n" + WORD.format("yes") + "\n# text = no\n" + WORD.format("no") + "\n"
LOGIC = {"train": [[list("or10=|"), list(".or101")]],
         "validation": [[list("and11=|"), list(".and111")]]}


def _xz(text: str) -> bytes:
    return lzma.compress(text.encode())


def _data_error(call) -> str:
    with pytest.raises((DataError, FileNotFoundError)) as err:
        call()
    return _one_line(err)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.conllu"
    path.write_text(CONLLU)
    return path


@pytest.mark.parametrize("name, data, message", [
    ("latin1.conllu", (CONLLU + WORD.format("caf\xe9")).encode("latin-1"),
     "{path}:7: not UTF-8 text (byte 0xe9 at column 6)"),
    ("cut.conllu.xz", _xz(CONLLU * 200)[:-40],
     "{path}: truncated: the compressed data end before the end of the stream"),
    ("cut.conllu.gz", gzip.compress((CONLLU * 200).encode())[:-40],
     "{path}: truncated: the compressed data end before the end of the stream"),
    ("junk.conllu.xz", b"\xfd7zXZ\x00" + b"\x00" * 60, "{path}: corrupt .xz data"),
    ("junk.conllu.gz", b"hello", "{path}: corrupt data (Not a gzipped file"),
])
def test_damaged_text_files_name_the_file(tmp_path, good, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    expected = message.format(path=path)
    assert _data_error(lambda: read_conllu(path)).startswith(expected)
    assert _data_error(lambda: read_sentences(path)).startswith(expected)
    assert _data_error(lambda: POSTask(str(good), str(path), min_count=1)).startswith(expected)
    assert _data_error(lambda: POSTask(str(path), str(good), min_count=1)).startswith(expected)


def test_a_byte_order_mark_is_not_data(tmp_path):
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + CONLLU.encode())
    assert [s.forms for s in read_conllu(path)] == [("yes",), ("no",)]
    text = tmp_path / "bom.txt"
    text.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_sentences(text) == ["hello"]


@pytest.mark.parametrize("heldout", ["", "# only a comment\n# and another\n\n"])
def test_an_empty_heldout_conllu_is_refused_at_construction(tmp_path, good, heldout):
    path = tmp_path / "dev.conllu"
    path.write_text(heldout)
    assert _data_error(lambda: POSTask(str(good), str(path), min_count=1)) == (
        f"pos: no sentences in {path} (the held-out file is empty or holds only comments)")


def test_an_empty_heldout_file_fails_before_a_run_directory(tmp_path, good):
    from mannlab import api

    dev = tmp_path / "dev.conllu"
    dev.write_text("")
    config = _write(tmp_path, f"task: {{name: pos, train_path: {good}, heldout_path: {dev}, "
                              "min_count: 1}\nmodel: {name: lstm}\n")
    with pytest.raises(ConfigError) as err:
        api.train(config, run_dir=tmp_path / "run")
    assert _one_line(err) == f"{config}: pos: no sentences in {dev} (the held-out file is " \
        "empty or holds only comments)"
    assert not (tmp_path / "run").exists()


def test_a_directory_as_data_file(tmp_path, good):
    assert _data_error(lambda: POSTask(str(good), str(tmp_path), min_count=1)) == (
        f"{tmp_path}: is a directory, not a data file")
    assert _data_error(lambda: LogicTask(str(tmp_path), source="auto")) == (
        f"logic: data_path {tmp_path} is a directory, not a data file")


def test_fewer_sentences_than_the_heldout_split_needs(tmp_path):
    path = tmp_path / "few.txt"
    path.write_text("one\ntwo\nthree\n")
    assert _data_error(lambda: SentencesTask(str(path), count=5, heldout_every=10)) == (
        f"sentences: {path} gives 3 sentences (count 5), fewer than heldout_every=10: no "
        "sentence would be held out (heldout_every=0 holds none out and says so)")
    task = SentencesTask(str(path), count=5, heldout_every=3)
    assert task.heldout_sentences == ["three"] and "heldout" in task.splits()
    none = SentencesTask(str(path), count=5, heldout_every=0)
    assert none.heldout_sentences == [] and set(none.splits()) == {"train"}


@pytest.mark.parametrize("data, message", [
    ({"train": LOGIC["train"]}, "expected an object with 'train' and 'validation' lists"),
    ({**LOGIC, "validation": []}, "the validation split is empty"),
    ({**LOGIC, "train": []}, "the train split is empty"),
    ({**LOGIC, "train": [[1, 2]]}, "train[0]: expected [input_symbols, output_symbols]"),
    ({**LOGIC, "validation": [[[["a"]], [["b"]]]]}, "validation[0]: unknown symbol ['a']"),
    ({**LOGIC, "train": [[[], []]]}, "train[0]: an empty expression"),
    ([1, 2], "expected an object with 'train' and 'validation' lists"),
])
def test_a_malformed_logic_file_names_the_file_and_entry(tmp_path, data, message):
    path = tmp_path / "logic.json"
    path.write_text(json.dumps(data))
    assert _data_error(lambda: LogicTask(str(path), source="file")).startswith(
        f"{path}: {message}")


@pytest.mark.parametrize("name, data, message", [
    ("logic.json.xz", _xz(json.dumps(LOGIC))[:-12], "{path}: truncated"),
    ("logic.json", b'{"train": [], \xff}', "{path}:1: not UTF-8 text (byte 0xff at column 15)"),
    ("logic.json", b'{"train": [\n', "{path}: not valid JSON: Expecting value: line 2 column 1"),
])
def test_a_damaged_logic_file(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    assert _data_error(lambda: LogicTask(str(path), source="file")).startswith(
        message.format(path=path))
