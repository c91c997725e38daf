from pathlib import Path

import jax
import pytest

from mannlab.config import ConfigError, load_config, parse_config
from mannlab.models.dnc import DNC
from mannlab.tasks.repeat_copy import RepeatCopyTask

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("name", ["dnc-copy", "dnc-repeat-copy", "dnc-repeat-copy-hard",
                                  "ntm-repeat-copy-hard"])
def test_configs_build(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    task = cfg.task.build()
    model = cfg.model.build(task.input_size, task.output_size, jax.random.key(0))
    assert model.init_state(2) is not None


def test_dnc_and_repeat_copy_fields():
    cfg = load_config(CONFIGS / "dnc-repeat-copy.yaml",
                      ["model.content_masking=true", "model.link_sharpness=true"])
    task = cfg.task.build()
    model = cfg.model.build(task.input_size, task.output_size, jax.random.key(0))
    assert isinstance(model, DNC) and isinstance(task, RepeatCopyTask)
    assert model.content_masking and model.link_sharpness and not model.deallocation_erase
    assert (model.memory_size, model.memory_width, model.read_heads) == (16, 16, 4)
    assert task.repeat_normaliser == 10.0 and task.max_repeats == 2


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="write_heads"):
        parse_config({"task": {"name": "copy"}, "model": {"name": "dnc", "write_heads": 2}})
    with pytest.raises(ConfigError, match="repeat_normaliser"):
        parse_config({"task": {"name": "repeat_copy", "repeat_normaliser": 0},
                      "model": {"name": "dnc"}})
