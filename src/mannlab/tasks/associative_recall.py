"""The associative recall task (NTM paper, Graves et al. 2014, section 4.3).

An item is `item_length` random `bits`-bit vectors. The input shows K items,
each preceded by a step on the item-delimiter channel; then a query: one of
the first K - 1 items, between two steps on the query-delimiter channel.
The target is the item that followed the query item in the input, scored
during the `item_length` answer steps after the query. Items within one
example are distinct, so every query has exactly one answer.

The sequence "length" of this task (``sample(length=K)``, ``mannlab eval
--lengths``) is the number of items K; the paper trains on 2-6 items and
tests generalisation to more. An example takes
K (L + 1) + (L + 2) + L steps, L = `item_length`.
"""

import numpy as np

from mannlab.tasks.base import Batch, BitTask, bucket_edges, pad_length


def steps_needed(items: int, item_length: int) -> int:
    """Time steps of one example: K delimited items, the delimited query, the answer."""
    return items * (item_length + 1) + (item_length + 2) + item_length


class AssociativeRecallTask(BitTask):
    heldout_seed = 2014_10_20_43
    metric_names = ("bits_wrong", "cost")

    def __init__(self, bits: int = 6, item_length: int = 3, min_items: int = 2,
                 max_items: int = 6, length_buckets: int = 4):
        if bits < 1 or item_length < 1:
            raise ValueError(f"associative_recall: bits and item_length must be >= 1, got "
                             f"bits={bits}, item_length={item_length}")
        if not 2 <= min_items <= max_items:
            raise ValueError(f"associative_recall: need 2 <= min_items <= max_items, got "
                             f"min_items={min_items}, max_items={max_items}")
        # how many distinct items exist (capped: only comparisons use it)
        self.possible_items = 2 ** min(bits * item_length, 62)
        if max_items > self.possible_items:
            raise ValueError(f"associative_recall: max_items={max_items} distinct items do not "
                             f"exist with bits={bits}, item_length={item_length}")
        self.bits, self.item_length = bits, item_length
        self.min_items, self.max_items = min_items, max_items
        self.edges = bucket_edges(steps_needed(min_items, item_length),
                                  steps_needed(max_items, item_length), length_buckets)
        self.input_size = bits + 2  # data bits, item delimiter, query delimiter
        self.output_size = bits

    @property
    def max_length(self) -> int:
        """The longest training example, in items (what reports and figures
        call the training length)."""
        return self.max_items

    def has_length(self, length: int) -> bool:
        """`length` is the number of items: at least 2 (a query and its
        successor), and no more than there are distinct items."""
        return 2 <= length <= self.possible_items

    def sample(self, rng: np.random.Generator, batch_size: int, length: int | None = None) -> Batch:
        """A batch of the training distribution, or with exactly `length` items."""
        if length is None:
            counts = rng.integers(self.min_items, self.max_items + 1, size=batch_size)
            pad = pad_length(steps_needed(int(counts.max()), self.item_length), self.edges)
        else:
            if not self.has_length(length):
                raise ValueError(f"associative_recall: length={length} items; need 2 to "
                                 f"{self.possible_items} (distinct items)")
            counts = np.full(batch_size, length)
            pad = steps_needed(length, self.item_length)
        items = [self._distinct_items(rng, int(k)) for k in counts]
        queries = np.array([rng.integers(0, k - 1) for k in counts])
        return self.make_batch(items, queries, pad)

    def _distinct_items(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """[count, item_length, bits] random items, all different.

        Drawn whole and redrawn on a repeat, which is rare unless `count`
        nears the number of possible items; from half of them on, drawn
        without replacement instead (redrawing could take forever there).
        """
        if 2 * count > self.possible_items:
            codes = rng.choice(self.possible_items, size=count, replace=False)
            width = self.bits * self.item_length
            flat = (codes[:, None] >> np.arange(width)[::-1]) & 1
            return flat.reshape(count, self.item_length, self.bits)
        while True:
            items = rng.integers(0, 2, size=(count, self.item_length, self.bits))
            if len(np.unique(items.reshape(count, -1), axis=0)) == count:
                return items

    def make_batch(self, items: list[np.ndarray], queries: np.ndarray, steps: int) -> Batch:
        """Lay out examples as a batch of `steps` time steps.

        Args:
          items: per example, [K, item_length, bits] in {0, 1}.
          queries: [B] index of the query item (< K - 1) in each example.
          steps: the padded length T (>= every example's `steps_needed`).
        Returns:
          Batch: inputs [T, B, bits + 2], targets [T, B, bits], masks [T, B].
        """
        B, L, d = len(items), self.item_length, self.bits
        inputs = np.zeros((steps, B, self.input_size), np.float32)
        targets = np.zeros((steps, B, d), np.float32)
        loss_mask = np.zeros((steps, B), np.float32)
        step_mask = np.zeros((steps, B), bool)
        for b, (its, q) in enumerate(zip(items, queries)):
            t = 0
            for item in its:
                inputs[t, b, d] = 1.0  # item delimiter
                inputs[t + 1:t + 1 + L, b, :d] = item
                t += L + 1
            inputs[t, b, d + 1] = 1.0  # query delimiter
            inputs[t + 1:t + 1 + L, b, :d] = its[q]
            inputs[t + 1 + L, b, d + 1] = 1.0
            t += L + 2
            targets[t:t + L, b] = its[q + 1]
            loss_mask[t:t + L, b] = 1.0
            step_mask[:t + L, b] = True
        return Batch(inputs, targets, loss_mask, step_mask)
