"""SAM in configs: `model.name: sam`, defaults from the constructor, the
shipped configs, one-line errors."""

import inspect
from pathlib import Path

import jax
import pytest

from mannlab.config import ConfigError, SAMConfig, load_config, parse_config
from mannlab.models.sam import SAM

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("name", ["sam-copy", "sam-associative-recall"])
def test_shipped_sam_configs_build(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    task = cfg.task.build()
    model = cfg.model.build(task.input_size, task.output_size, jax.random.key(0))
    assert isinstance(model, SAM) and model.kernels == "fast"
    assert (model.memory_size, model.memory_width, model.top_k) == (128, 20, 4)


def test_defaults_are_the_constructors():
    cfg = parse_config({"task": {"name": "copy", "bits": 4}, "model": {"name": "sam"}})
    signature = inspect.signature(SAM).parameters
    for field in SAMConfig.model_fields:
        if field != "name":
            assert getattr(cfg.model, field) == signature[field].default, field
    cfg = parse_config({"task": {"name": "copy", "bits": 4},
                        "model": {"name": "sam", "kernels": "reference", "top_k": 2}})
    model = cfg.model.build(5, 4, jax.random.key(0))
    assert (model.kernels, model.top_k) == ("reference", 2)


@pytest.mark.parametrize("model, message", [
    ({"name": "sam", "top_k": 9, "memory_size": 8}, "top_k (9) must be at most memory_size (8)"),
    ({"name": "sam", "top_k": 0}, "model.top_k"),
    ({"name": "sam", "kernels": "slow"}, "model.kernels"),
])
def test_bad_values_are_one_line_errors(model, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        parse_config({"task": {"name": "copy"}, "model": model})
    assert "\n" not in str(err.value)


def test_lsh_search_from_a_config():
    cfg = parse_config({"task": {"name": "copy", "bits": 4},
                        "model": {"name": "sam", "memory_size": 1024, "search": "lsh",
                                  "lsh_probes": 64}})
    model = cfg.model.build(6, 4, jax.random.key(0))
    assert (model.search_kind, model.lsh_probes, model.lsh_candidates,
            model.centroids.shape) == ("lsh", 64, 512, (128, 20))
    assert model.init_state(2).index.table.shape == (2, 129, 16)
    with pytest.raises(ConfigError, match="model.lsh_probes") as err:
        parse_config({"task": {"name": "copy"}, "model": {"name": "sam", "lsh_probes": 0}})
    assert "\n" not in str(err.value)


def test_memory_estimate_does_not_count_the_memory_per_time_step():
    """`mannlab train` refuses a step that does not fit from an estimate
    (training/footprint.py): the NTM's grows with the sequence length, SAM's
    does not (its backward pass keeps no memory per step)."""
    from mannlab.training.footprint import training_bytes

    def estimate(model, length):
        cfg = parse_config({"task": {"name": "copy", "bits": 4, "min_length": 1,
                                     "max_length": length},
                            "model": {"name": model, "memory_size": 4096}})
        return training_bytes(cfg, cfg.task.build())

    assert estimate("sam", 40) == estimate("sam", 10)
    assert estimate("ntm", 40) > 3 * estimate("ntm", 10)
