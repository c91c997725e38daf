"""The Chomsky-hierarchy tasks (Delétang et al. 2023): `answer` against the
reference generators' fixtures and hand-written examples, the sampler against
`answer`, the protocol's layout, loss and metrics."""

import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.tasks.chomsky import LEVELS, TASKS, make_task
from mannlab.tasks.chomsky.base import predictions
from mannlab.tasks.chomsky.dcf import evaluate, random_expression
from mannlab.tasks.seqdata import PACKAGED_DATA

FIXTURES = PACKAGED_DATA / "chomsky-fixtures"
NAMES = sorted(TASKS)


def fixture(name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{length: (inputs [N, n], outputs [N, k])} of the reference generators."""
    with np.load(FIXTURES / f"{name}.npz") as z:
        lengths = sorted(int(k.split("_")[1]) for k in z.files if k.startswith("input_"))
        return {n: (z[f"input_{n}"].astype(np.int64), z[f"output_{n}"].astype(np.int64))
                for n in lengths}


def test_the_fifteen_tasks_by_level():
    by_level = {level: sorted(n for n, c in TASKS.items() if c.level == level) for level in LEVELS}
    assert by_level == {
        "regular": ["cycle_navigation", "even_pairs", "modular_arithmetic", "parity_check"],
        "dcf": ["modular_arithmetic_brackets", "reverse_string", "solve_equation",
                "stack_manipulation"],
        "cs": ["binary_addition", "binary_multiplication", "bucket_sort", "compute_sqrt",
               "duplicate_string", "missing_duplicate_string", "odds_first"]}
    assert sorted(p.stem for p in FIXTURES.glob("*.npz")) == NAMES


# the reference's input_size and output_size (its tasks' properties)
REFERENCE_SIZES = {
    "even_pairs": (2, 2), "modular_arithmetic": (9, 5), "parity_check": (2, 2),
    "cycle_navigation": (3, 5), "modular_arithmetic_brackets": (11, 5),
    "reverse_string": (2, 2), "stack_manipulation": (5, 3), "solve_equation": (11, 5),
    "duplicate_string": (2, 2), "missing_duplicate_string": (4, 2), "odds_first": (2, 2),
    "binary_addition": (3, 3), "binary_multiplication": (3, 3), "compute_sqrt": (2, 2),
    "bucket_sort": (5, 5)}


@pytest.mark.parametrize("name", NAMES)
def test_answer_reproduces_every_fixture_output(name):
    task = make_task(name)
    assert (task.vocab_size, task.output_size) == REFERENCE_SIZES[name]
    assert task.input_size == task.vocab_size + 1  # the blank marker channel
    checked = 0
    for length, (inputs, outputs) in fixture(name).items():
        assert inputs.shape[1] == task.input_length(length), length
        assert outputs.shape[1] == task.output_length(inputs.shape[1]), length
        for x, y in zip(inputs, outputs):
            np.testing.assert_array_equal(task.answer(x), y, err_msg=f"{name} {x.tolist()}")
            checked += 1
    assert checked >= 300


@pytest.mark.parametrize("name", NAMES)
def test_the_samplers_examples_satisfy_answer_and_look_like_the_fixtures(name):
    task = make_task(name)
    rng = np.random.default_rng(19)
    for length, (ref_inputs, ref_outputs) in fixture(name).items():
        inputs, outputs = task.generate(rng, 48, length)
        assert inputs.shape == (48, ref_inputs.shape[1]) and outputs.shape[1] == \
            ref_outputs.shape[1], length
        for x, y in zip(inputs, outputs):
            np.testing.assert_array_equal(task.answer(x), y, err_msg=f"{name} {x.tolist()}")
        if length >= 16:  # the same token ids in use, and output classes
            assert set(np.unique(inputs)) == set(np.unique(ref_inputs)), length
            assert set(np.unique(outputs)) <= set(range(task.output_size))
    for length in (150, 500):  # test lengths: the sampler and answer still agree
        inputs, outputs = task.generate(rng, 2, length)
        for x, y in zip(inputs, outputs):
            np.testing.assert_array_equal(task.answer(x), y)


# (task, input ids, output ids), worked out by hand from the task definitions
HAND = [
    ("even_pairs", [0, 0, 1, 1, 1, 0], [0]),
    ("even_pairs", [0, 1, 0, 1, 0, 0, 1], [1]),
    ("even_pairs", [1], [0]),
    ("parity_check", [1, 0, 1, 0, 1, 0, 0], [1]),
    ("parity_check", [0, 1, 1, 1, 1], [0]),
    ("cycle_navigation", [2, 0, 1, 0, 0], [3]),  # +1 -1 0 -1 -1 = -2
    ("cycle_navigation", [2, 2, 2, 0], [2]),
    ("modular_arithmetic", [1, 5, 2, 7, 3], [2]),  # 1 + 2 * 3 = 7
    ("modular_arithmetic", [1, 6, 1, 6, 1], [4]),  # 1 - 1 - 1 = -1
    ("modular_arithmetic", [0, 7, 1, 5, 4, 7, 3, 6, 2], [0]),  # 0*1 + 4*3 - 2 = 10
    ("modular_arithmetic", [3, 6, 4, 7, 4], [2]),  # 3 - 16 = -13
    ("modular_arithmetic", [3, 8, 8, 7, 4], [3]),  # blanks: 3 + 0 * 4
    ("modular_arithmetic_brackets", [3], [3]),
    ("modular_arithmetic_brackets", [6, 3], [2]),  # -3
    ("modular_arithmetic_brackets", [8, 1, 6, 8, 6, 3, 7, 2, 9, 9], [2]),  # (1-(-3*2))
    ("modular_arithmetic_brackets", [8, 8, 4, 5, 4, 9, 7, 4, 9], [2]),  # ((4+4)*4) = 32
    ("solve_equation", [7, 9, 6, 2, 8, 10, 4], [1]),  # (x-2)=4
    ("solve_equation", [7, 3, 6, 6, 9, 8, 10, 0], [2]),  # (3--x)=0
    ("solve_equation", [9, 10, 3], [3]),  # x=3
    ("solve_equation", [0, 0], [0]),  # too short for an equation: the reference's convention
    ("reverse_string", [0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0]),
    ("stack_manipulation", [0, 1, 1, 0, 4, 2, 2], [1, 1, 0, 2, 0, 0, 0, 0]),
    ("stack_manipulation", [1, 1, 0, 2, 2, 2], [2, 0, 0, 0, 0, 0, 0]),
    ("stack_manipulation", [1, 2, 2, 3], [0, 2, 0, 0, 0]),  # a POP of an empty stack
    ("stack_manipulation", [1], [1, 2]),
    ("duplicate_string", [1, 0, 1], [1, 0, 1, 1, 0, 1]),
    ("missing_duplicate_string", [0, 1, 1, 0, 0, 2, 1, 0], [1]),
    ("missing_duplicate_string", [1, 0, 1, 1, 2, 1, 3], [0]),
    ("missing_duplicate_string", [2, 1, 0, 1, 1, 0], [1]),  # 110 110
    ("missing_duplicate_string", [1], [1]),
    ("odds_first", [0, 0, 1, 1, 0, 1, 0, 1], [0, 1, 1, 1, 0, 1, 0, 0]),
    ("odds_first", [1, 1, 0], [1, 1, 0]),
    ("binary_addition", [0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 1, 0, 1, 1, 2, 0, 0, 0, 0]),  # 4 + 22
    ("binary_addition", [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],  # 9 + 32 = 41
     [1, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0, 0]),
    ("binary_addition", [1, 2, 1], [0, 1, 2, 0]),  # 1 + 1
    ("binary_addition", [0, 0], [0, 2, 0]),  # one number, no separator: itself
    ("binary_multiplication", [0, 0, 1, 2, 0, 1, 1, 0, 1], [0, 0, 0, 1, 1, 0, 1, 2, 0]),  # 88
    ("binary_multiplication", [1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 1],  # 9 * 32 = 288
     [0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 0]),
    ("binary_multiplication", [1, 1], [0, 2]),  # the reference's convention for length 2
    ("binary_multiplication", [0], [2]),
    ("compute_sqrt", [1, 0, 0, 1, 0, 1], [1, 1, 0]),  # 37 -> 6
    ("compute_sqrt", [1, 1, 1], [1, 0]),  # 7 -> 2
    ("compute_sqrt", [0, 0, 0, 1, 0], [0, 0, 1]),  # 2 -> 1
    ("bucket_sort", [1, 0, 2, 0, 4, 1, 1, 2], [0, 0, 1, 1, 1, 2, 2, 4]),
]


@pytest.mark.parametrize("name,inputs,outputs", HAND)
def test_hand_written_examples(name, inputs, outputs):
    task = make_task(name)
    np.testing.assert_array_equal(task.answer(inputs), outputs)
    assert len(outputs) == task.output_length(len(inputs))


def test_every_task_has_hand_written_examples():
    assert {name for name, _, _ in HAND} == set(TASKS)


def test_the_bracket_evaluator_and_generator_agree_at_any_depth():
    rng = np.random.default_rng(0)
    for length in (5, 9, 30, 200, 2000):
        text, value = random_expression(rng, length, multiply=True)
        assert len(text) == length and evaluate(text) == value
    deep = "(" * 3000 + "1" + ")" * 3000  # no recursion limit
    assert evaluate(deep) == 1
    for bad in ("", "(1", "1)", "1+", "*1", "12", "()", "1(2)", "7"):
        with pytest.raises(ValueError, match="not a well-formed expression"):
            evaluate(bad)


@pytest.mark.parametrize("name,tokens,message", [
    ("reverse_string", [0, 2], "reverse_string: input token 2 out of range 0..1"),
    ("reverse_string", [], "non-empty 1-D"),
    ("parity_check", [[0, 1]], "non-empty 1-D"),
    ("parity_check", [0.5], "must be integers"),
    ("modular_arithmetic", [1, 5], "odd length"),
    ("modular_arithmetic", [5, 1, 2], "expected digit, operator"),
    ("modular_arithmetic_brackets", [8, 1], "not a well-formed"),
    ("solve_equation", [1, 5, 2, 10, 3], "one x"),
    ("missing_duplicate_string", [0, 1, 0, 1], "one 2"),
    ("binary_addition", [1, 2, 2, 1], "empty number"),
    ("binary_multiplication", [1, 0, 1], "no separator"),
])
def test_bad_inputs_are_one_line_errors(name, tokens, message):
    with pytest.raises(ValueError, match=message) as err:
        make_task(name).answer(np.array(tokens) if tokens else np.array([], np.int64))
    assert "\n" not in str(err.value)


def test_layout_one_hot_inputs_with_the_blank_channel():
    task = make_task("stack_manipulation")
    batch = task.sample(np.random.default_rng(0), 3, length=4)
    T, B, V = batch.inputs.shape
    assert (T, B, V) == (4 + 5, 3, 6) and batch.targets.shape == (9, 3)
    ids = batch.inputs.argmax(-1)
    assert (batch.inputs.sum(-1) == 1).all() and (ids[4:] == 5).all() and (ids[:4] < 5).all()
    assert (batch.loss_mask[:4] == 0).all() and (batch.loss_mask[4:] == 1).all()
    assert batch.step_mask.all()
    for b in range(B):
        np.testing.assert_array_equal(batch.targets[4:, b], task.answer(ids[:4, b]))
    logits = np.eye(3)[batch.targets] * 10.0
    assert [p.tolist() for p in predictions(logits, batch)] == batch.targets[4:].T.tolist()


def test_training_batches_have_one_length_and_pad_to_a_bucket():
    task = make_task("duplicate_string", max_length=40, length_buckets=4)
    assert task.edges == [11, 21, 31, 40]
    rng = np.random.default_rng(1)
    for _ in range(20):
        batch = task.sample(rng, 4)
        steps = batch.step_mask.sum(0)
        assert len(set(steps)) == 1 and steps[0] % 3 == 0 and 3 <= steps[0] <= 120
        assert batch.inputs.shape[0] in {3 * e for e in task.edges}
        assert not batch.inputs[steps[0]:].any() and not batch.loss_mask[steps[0]:].any()
    heldout = task.heldout(64, chunk=32)
    assert [b.inputs.shape[1] for b in heldout] == [32, 32]
    assert len(set(heldout[0].step_mask.sum(0))) > 5  # mixed lengths within a batch
    again = task.heldout(64, chunk=32)
    np.testing.assert_array_equal(heldout[1].inputs, again[1].inputs)


def test_modular_arithmetic_lengths_are_odd():
    task = make_task("modular_arithmetic")
    assert [task.input_length(n) for n in (1, 2, 3, 40, 41)] == [1, 1, 3, 39, 41]
    assert task.sample(np.random.default_rng(0), 2, length=40).inputs.shape[0] == 39 + 1


def test_loss_accuracy_and_the_end_token():
    task = make_task("binary_addition")
    batch = task.sample(np.random.default_rng(3), 8, length=6)
    perfect = jnp.asarray(np.eye(3)[batch.targets] * 20.0)
    loss, m = task.loss(perfect, batch)
    assert float(loss) < 1e-6 and (np.asarray(m["accuracy"]) == 1).all()
    assert (np.asarray(m["error"]) == 0).all() and (np.asarray(m["sequence_error"]) == 0).all()
    # the last output step is padding after the end token (outputs have at most 6 tokens):
    # wrong there costs loss but not accuracy
    wrong_pad = perfect.at[-1].set(jnp.asarray(np.eye(3)[1] * 20.0))
    loss2, m2 = task.loss(wrong_pad, batch)
    assert float(loss2) > 1.0 and (np.asarray(m2["accuracy"]) == 1).all()
    # the first output token wrong: 1 of (sum bits + end token) counted tokens
    first = int(np.flatnonzero(batch.loss_mask[:, 0])[0])
    wrong_first = perfect.at[first, 0].set(jnp.asarray(np.eye(3)[(batch.targets[first, 0] + 1) % 3]
                                                       * 20.0))
    _, m3 = task.loss(wrong_first, batch)
    counted = list(batch.targets[first:, 0]).index(2) + 1
    assert float(m3["accuracy"][0]) == pytest.approx(1 - 1 / counted)
    assert float(m3["error"][0]) == pytest.approx(1 / counted)
    assert float(m3["sequence_error"][0]) == 1.0
    assert task.metric_names[:2] == ("error", "accuracy")


@pytest.mark.parametrize("bad,message", [
    ({"min_length": 0}, "min_length"), ({"min_length": 5, "max_length": 3}, "max_length=3")])
def test_bad_lengths(bad, message):
    with pytest.raises(ValueError, match=message):
        make_task("parity_check", **bad)
    with pytest.raises(ValueError, match="length must be an integer >= 1, got 0"):
        make_task("parity_check").sample(np.random.default_rng(0), 1, length=0)
    with pytest.raises(ValueError, match="unknown Chomsky task 'nope'"):
        make_task("nope")
