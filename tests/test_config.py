import pytest

from mannlab.config import ConfigError, load_config, parse_config


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))
    assert configs
    for path in configs:
        load_config(path)


@pytest.mark.parametrize("text, message", [
    ("task: {name: copy}\nmodel: {name: ntm, memory_size: many}\n",
     r"c.yaml: model.memory_size: .*'many'"),  # named as an override names it
    ("task: {name: copy}\nmodel: {name: ntm}\ntrain: {batch_size: true}\n",
     r"train.batch_size: .*integer.*True"),  # no coercion of booleans to numbers
    ("task: {name: copy, max_length: '5'}\nmodel: {name: ntm}\n", r"task.max_length.*'5'"),
    ("task: {name: cpy}\nmodel: {name: ntm}\n", r"task: .*'cpy'"),
    ("task: {name: copy}\nmodel: {name: ntm, memory_sise: 3}\n", r"memory_sise.*Extra"),
    ("task: {name: copy}\nmodel: {name: ntm}\ntrain: {learning_rate: -1}\n",
     r"train.learning_rate.*-1"),
    ("task: {name: copy\n", "not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_malformed_configs_name_the_field_and_value(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(write(tmp_path, text))
    assert "\n" not in str(err.value)


def test_overrides_are_typed_and_checked(tmp_path):
    path = write(tmp_path, "task: {name: copy}\nmodel: {name: ntm}\n")
    cfg = load_config(path, ["train.batch_size=16", "model.shared_head=true"])
    assert cfg.train.batch_size == 16 and cfg.model.shared_head is True
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, ["train.batch_size"])
    with pytest.raises(ConfigError, match="batch_size"):
        load_config(path, ["train.batch_size=0"])


def test_mann_rl_runs_one_step_per_call(tmp_path):
    path = write(tmp_path, "task: {name: logic, source: generator}\nmodel: {name: mann_rl}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: train.steps_per_call: .*one step.*got 5\)$"):
        load_config(path, ["train.steps_per_call=5"])


def test_exponents_are_numbers_in_files_and_overrides(tmp_path):
    """YAML 1.1 (PyYAML) reads 1e-3 as a string; configs read it as YAML 1.2 does."""
    path = write(tmp_path, "task: {name: copy}\nmodel: {name: ntm}\ntrain: {learning_rate: 3e-4}\n")
    assert load_config(path).train.learning_rate == 3e-4
    assert load_config(path, ["train.learning_rate=1e-3"]).train.learning_rate == 1e-3


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/config.yaml")


def test_defaults_follow_the_ntm_paper():
    cfg = parse_config({"task": {"name": "copy"}, "model": {"name": "ntm"}})
    t = cfg.train
    assert (t.optimizer, t.learning_rate, t.momentum, t.decay, t.clip_value) == (
        "rmsprop", 1e-4, 0.9, 0.95, 10.0)


def test_boundaries_must_be_multiples_of_steps_per_call():
    with pytest.raises(ConfigError, match=r"train: .*log_every \(10\) must be a multiple of "
                                          r"steps_per_call \(4\)"):
        parse_config({"task": {"name": "copy"}, "model": {"name": "lstm"},
                      "train": {"log_every": 10, "eval_every": 20, "checkpoint_every": 20,
                                "steps_per_call": 4}})


def test_yaml_numbers_need_a_digit_and_saved_configs_read_back_the_same():
    from mannlab.config import dump_config, read_yaml

    assert [read_yaml(t) for t in ("1e-3", ".5", "3.", "1_000", ".e5", "-e5", "1.2.3")] == [
        1e-3, 0.5, 3.0, 1000, ".e5", "-e5", "1.2.3"]
    config = parse_config({"task": {"name": "sentences", "path": "2e3"}, "model": {"name": "lstm"}})
    assert parse_config(read_yaml(dump_config(config))) == config


def test_every_shipped_config_reads_back_as_it_was_saved():
    """A run directory's config.yaml (dump_config) parses to the same config,
    for every shipped config (defaults such as a data path of None included)."""
    from mannlab.config import dump_config, load_config, read_yaml, shipped_configs
    from mannlab.config import find_config as find

    for name in shipped_configs():
        config = load_config(find(name))
        assert parse_config(read_yaml(dump_config(config)), name) == config, name
