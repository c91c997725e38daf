import jax.numpy as jnp
import numpy as np
import pytest

from mannlab.tasks.ngrams import NGramsTask, bayes_optimal_cost, context_codes, ngram_sequence


def optimal_probabilities(bits: np.ndarray, order: int, prior: float) -> np.ndarray:
    """The paper's eq. 10 by counting, one bit at a time: P(bit t + 1 = 1) for
    t = order - 2 .. len - 2."""
    counts = {}
    out = []
    for t in range(order - 2, len(bits) - 1):
        context = tuple(bits[t - order + 2:t + 1])
        n0, n1 = counts.get(context, (0, 0))
        out.append((n1 + prior) / (n0 + n1 + 2 * prior))
        nxt = bits[t + 1]
        counts[context] = (n0 + (nxt == 0), n1 + (nxt == 1))
    return np.array(out)


def test_context_codes_by_hand():
    bits = jnp.array([1, 0, 1, 1, 0], jnp.float32)[:, None]
    # order 3: the last two bits, the newest as the lowest bit
    np.testing.assert_array_equal(context_codes(bits, 3)[:, 0], [1, 2, 1, 3, 2])


def test_layout_and_metrics_of_the_bayes_optimal_predictor():
    task = NGramsTask(order=3, min_length=30, max_length=30)
    rng = np.random.default_rng(0)
    seqs = [task.sequence(rng, 30) for _ in range(4)]
    b = task.make_batch(seqs, 32)
    np.testing.assert_array_equal(b.inputs[:30, 1, 0], seqs[1])
    np.testing.assert_array_equal(b.targets[:29, 1, 0], seqs[1][1:])
    np.testing.assert_array_equal(b.loss_mask[:, 0], [0] + [1] * 28 + [0] * 3)
    assert b.step_mask[:, 0].sum() == 30
    # a model that predicts eq. 10 exactly has no excess cost
    p = np.zeros((32, 4))
    for e, s in enumerate(seqs):
        p[1:29, e] = optimal_probabilities(s, 3, 0.5)
    logits = jnp.asarray(np.log(p + 1e-30) - np.log1p(-p + 1e-30))[..., None]
    _, metrics = task.loss(logits, b)
    np.testing.assert_allclose(metrics["excess_cost"], 0.0, atol=2e-3)
    expected = [-np.sum(np.where(s[2:] == 1, np.log2(q), np.log2(1 - q)))
                for s, q in zip(seqs, (optimal_probabilities(s, 3, 0.5) for s in seqs))]
    np.testing.assert_allclose(metrics["cost"], expected, rtol=1e-4)
    # predicting 1/2 everywhere costs one bit per scored prediction
    _, metrics = task.loss(jnp.zeros((32, 4, 1)), b)
    np.testing.assert_allclose(metrics["cost"], 28.0, rtol=1e-5)


def test_tables_are_drawn_from_the_beta_prior():
    """Near-deterministic tables (tiny beta) are learnable within a sequence;
    near-fair ones (huge beta) cost about a bit per prediction."""
    rng = np.random.default_rng(1)
    for beta, low, high in [(0.02, 0.0, 0.15), (1000.0, 0.9, 1.05)]:
        task = NGramsTask(min_length=200, max_length=200, beta=beta)
        b = task.sample(rng, 32)
        cost = bayes_optimal_cost(jnp.asarray(b.inputs[..., 0]), jnp.asarray(b.targets[..., 0]),
                                  jnp.asarray(b.loss_mask), 6, beta)
        per_bit = float(cost.mean()) / b.loss_mask.sum(0).mean()
        assert low < per_bit < high, (beta, per_bit)


def test_generator_follows_its_table_in_the_predictors_context_order():
    """A 0/1 table makes each bit a function of the previous n - 1 bits, coded
    as `context_codes` codes them."""
    rng = np.random.default_rng(4)
    table = rng.integers(0, 2, size=32).astype(float)
    bits = ngram_sequence(table, np.array([1, 0, 0, 1, 1]), rng.random(60))
    codes = np.asarray(context_codes(jnp.asarray(bits, jnp.float32)[:, None], 6))[:, 0]
    np.testing.assert_array_equal(bits[5:], table[codes[4:-1]])
    # with a near-zero prior the Bayes-optimal predictor then pays one bit at
    # each context's first sight and nothing after (and stays finite)
    mask = np.zeros(60)
    mask[4:59] = 1
    cost = bayes_optimal_cost(jnp.asarray(bits[:, None], jnp.float32),
                              jnp.asarray(np.append(bits[1:], 0)[:, None], jnp.float32),
                              jnp.asarray(mask[:, None]), 6, 1e-9)
    np.testing.assert_allclose(cost, [len(set(codes[4:59]))], rtol=1e-4)


def test_lengths_and_validation():
    task = NGramsTask(min_length=10, max_length=50, length_buckets=2)
    rng = np.random.default_rng(2)
    for _ in range(5):
        assert task.sample(rng, 4).inputs.shape[0] in task.edges
    assert task.sample(rng, 2, length=300).inputs.shape[0] == 300
    assert task.has_length(6) and not task.has_length(5)
    with pytest.raises(ValueError, match="order"):
        NGramsTask(order=1)
    with pytest.raises(ValueError, match="beta"):
        NGramsTask(beta=0.0)
