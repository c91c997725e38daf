"""The Chomsky-hierarchy tasks in configs: ``name: chomsky`` with ``task:``,
and the shipped configs."""

from pathlib import Path

import pytest

from mannlab.config import find_config, load_config, parse_config


def test_config_names_the_task():
    config = parse_config({"task": {"name": "chomsky", "task": "odds_first", "max_length": 20},
                           "model": {"name": "lstm"}})
    task = config.task.build()
    assert type(task).__name__ == "OddsFirst" and task.max_length == 20 and task.min_length == 1
    assert task.input_size == 3 and task.output_size == 2 and task.embedding is None
    with pytest.raises(ValueError, match="task.task: Input should be 'even_pairs'"):
        parse_config({"task": {"name": "chomsky", "task": "nope"}, "model": {"name": "lstm"}})


@pytest.mark.parametrize("model", ["lstm", "ntm", "dnc"])
def test_shipped_reverse_string_configs(model):
    config = load_config(find_config(f"{model}-chomsky-reverse-string"))
    task = config.task.build()
    assert config.task.task == "reverse_string" and (task.min_length, task.max_length) == (1, 40)
    if model != "lstm":
        assert config.model.memory_size >= 512  # one row per token of a length-500 input
    assert Path(find_config(f"{model}-chomsky-reverse-string")).parent.name == "configs"
