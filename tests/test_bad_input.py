"""Bad input: config files, overrides and data files. Every error is one
line naming the file (and line) or the field, and the value."""

import pytest

from mannlab.config import ConfigError, find_config, load_config

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
