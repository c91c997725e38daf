"""The context-sensitive tasks: duplicate string, missing duplicate string,
odds first, binary addition, binary multiplication, compute sqrt, bucket sort.

Token ids are the reference generators'
(google-deepmind/neural_networks_chomsky_hierarchy).
"""

import math

import numpy as np

from mannlab.tasks.chomsky.base import ChomskyTask, little_endian, random_positive


class DuplicateString(ChomskyTask):
    """Bits in (ids 0, 1); answer them twice: s s (2n tokens)."""

    name, level = "duplicate_string", "cs"
    vocab_size = output_size = 2

    def output_length(self, input_length):
        return 2 * input_length

    def generate(self, rng, count, length):
        x = rng.integers(0, 2, (count, length))
        return x, np.concatenate([x, x], axis=1)

    def answer(self, tokens):
        return np.tile(self.check_input(tokens), 2)


class MissingDuplicateString(ChomskyTask):
    """A bit string of length // 2 written twice, one of its 2 * (length // 2)
    bits replaced by the placeholder 2, and, for odd lengths, the pad token 3
    at the end; answer the hidden bit. Length 1 (no string) is the input 1,
    answering 1 (the reference's convention). Example: 0 1 1 0 0 2 1 0 -> 1."""

    name, level = "missing_duplicate_string", "cs"
    vocab_size, output_size = 4, 2
    HIDDEN, PAD = 2, 3

    def generate(self, rng, count, length):
        if length == 1:
            return np.ones((count, 1), np.int64), np.ones((count, 1), np.int64)
        half = length // 2
        s = rng.integers(0, 2, (count, half))
        x = np.concatenate([s, s, np.full((count, length % 2), self.PAD)], axis=1)
        where = rng.integers(0, 2 * half, count)
        rows = np.arange(count)
        hidden = x[rows, where].copy()
        x[rows, where] = self.HIDDEN
        return x, hidden[:, None]

    def answer(self, tokens):
        x = self.check_input(tokens)
        if len(x) == 1:
            return np.array([1])
        body = x[:-1] if len(x) % 2 else x
        half = len(body) // 2
        places = np.flatnonzero(body == self.HIDDEN)
        if (len(places) != 1 or np.any(body == self.PAD)
                or (len(x) % 2 and x[-1] != self.PAD)):
            raise ValueError(f"{self.name}: expected a doubled bit string with one 2 (and a "
                             f"final 3 if odd), got {x.tolist()}")
        i = int(places[0])
        return np.array([int(body[(i + half) % len(body)])])


class OddsFirst(ChomskyTask):
    """Bits in (ids 0, 1); answer the bits at odd (0-based) places, then
    those at even places: s[1::2] s[0::2], as the reference generator does
    (its docstring and the paper's 1-based notation say s_1 s_3 ..., the
    other way round; the code, whose data the paper trained on, decides).
    Example: 0 0 1 1 0 1 0 1 -> 0 1 1 1 0 1 0 0."""

    name, level = "odds_first", "cs"
    vocab_size = output_size = 2

    def output_length(self, input_length):
        return input_length

    def generate(self, rng, count, length):
        x = rng.integers(0, 2, (count, length))
        return x, np.concatenate([x[:, 1::2], x[:, 0::2]], axis=1)

    def answer(self, tokens):
        x = self.check_input(tokens)
        return np.concatenate([x[1::2], x[0::2]])


SEPARATOR = END = 2
"""The binary tasks' operator token in the input and end token in the output."""


def _numbers(task: ChomskyTask, x: np.ndarray) -> list[int]:
    """The little-endian numbers of input `x`, split at the separators."""
    parts = np.split(x, np.flatnonzero(x == SEPARATOR))
    parts = [parts[0]] + [p[1:] for p in parts[1:]]
    if any(len(p) == 0 for p in parts):
        raise ValueError(f"{task.name}: an empty number in {x.tolist()}")
    return [int("".join(map(str, p[::-1])), 2) for p in parts]


def _binary_operands(rng: np.random.Generator, count: int, length: int):
    """The binary tasks' inputs of `length` >= 3: two positive numbers of
    uniform bit counts n + m = length - 1, each uniform in [1, 2^bits - 1],
    little-endian with leading zeros, joined by the separator. Returns the
    token rows and the (a, b) pairs."""
    rows, pairs = [], []
    for _ in range(count):
        n = int(rng.integers(1, length - 1))
        a, b = random_positive(rng, n), random_positive(rng, length - 1 - n)
        rows.append(little_endian(a, n) + [SEPARATOR] + little_endian(b, length - 1 - n))
        pairs.append((a, b))
    return rows, pairs


def _short_operands(rng: np.random.Generator, count: int, length: int):
    """Inputs of length 1 or 2, one number without a separator, uniform in
    [0, 2^length - 1) (the reference's draw: length 1 is always 0)."""
    values = rng.integers(0, 2**length - 1, count)
    return [little_endian(int(v), length) for v in values], [int(v) for v in values]


class BinaryAddition(ChomskyTask):
    """Two little-endian binary numbers joined by the separator 2 (ids 0, 1,
    2); answer their sum, little-endian without trailing zeros (0 is one 0),
    then the end token 2, padded with 0 to length + 1 tokens (only the tokens
    up to the end token count for accuracy). Lengths 1 and 2 are one number
    without a separator, answered as itself. Example: 0 0 1 2 0 1 1 0 1
    (4 + 22) -> 0 1 0 1 1 2 0 0 0 0 (26)."""

    name, level = "binary_addition", "cs"
    vocab_size = output_size = 3
    end_token = END

    def output_length(self, input_length):
        return input_length + 1

    def generate(self, rng, count, length):
        if length <= 2:
            rows, sums = _short_operands(rng, count, length)
        else:
            rows, pairs = _binary_operands(rng, count, length)
            sums = [a + b for a, b in pairs]
        return np.array(rows, np.int64), np.array([
            little_endian(s) + [END] + [0] * (length - len(little_endian(s))) for s in sums])

    def answer(self, tokens):
        x = self.check_input(tokens)
        bits = little_endian(sum(_numbers(self, x))) + [END]
        if len(bits) > self.output_length(len(x)):
            raise ValueError(f"{self.name}: the sum of {x.tolist()} does not fit its output")
        return np.array(bits + [0] * (self.output_length(len(x)) - len(bits)))


class BinaryMultiplication(ChomskyTask):
    """Two little-endian binary numbers joined by the separator 2 (ids 0, 1,
    2); answer their product, little-endian without trailing zeros, then the
    end token 2, padded with 0 to length tokens (only the tokens up to the
    end token count for accuracy). Lengths 1 and 2 are one number without a
    separator whose answer is, by the reference's convention, length - 1
    zeros then the end token. Example: 0 0 1 2 0 1 1 0 1 (4 * 22) ->
    0 0 0 1 1 0 1 2 0 (88)."""

    name, level = "binary_multiplication", "cs"
    vocab_size = output_size = 3
    end_token = END

    def output_length(self, input_length):
        return input_length

    def _padded(self, bits: list[int], length: int) -> list[int]:
        return bits + [END] + [0] * (length - 1 - len(bits))

    def generate(self, rng, count, length):
        if length <= 2:
            rows, _ = _short_operands(rng, count, length)
            return np.array(rows, np.int64), np.array(
                [self._padded([0] * (length - 1), length)] * count)
        rows, pairs = _binary_operands(rng, count, length)
        return np.array(rows, np.int64), np.array(
            [self._padded(little_endian(a * b), length) for a, b in pairs])

    def answer(self, tokens):
        x = self.check_input(tokens)
        if SEPARATOR not in x:
            if len(x) > 2:
                raise ValueError(f"{self.name}: no separator (2) in {x.tolist()}")
            return np.array(self._padded([0] * (len(x) - 1), len(x)))
        bits = little_endian(math.prod(_numbers(self, x)))
        if len(bits) + 1 > len(x):
            raise ValueError(f"{self.name}: the product of {x.tolist()} does not fit its output")
        return np.array(self._padded(bits, len(x)))


class ComputeSqrt(ChomskyTask):
    """A big-endian binary number of length bits (ids 0, 1; leading zeros
    allowed); answer the floor of its square root, big-endian, in
    ceil(length / 2) bits. Example: 1 0 0 1 0 1 (37) -> 1 1 0 (6)."""

    name, level = "compute_sqrt", "cs"
    vocab_size = output_size = 2

    def output_length(self, input_length):
        return math.ceil(input_length / 2)

    def generate(self, rng, count, length):
        values = [random_positive(rng, length) for _ in range(count)]
        k = self.output_length(length)
        rows = [[int(c) for c in f"{v:0{length}b}"] for v in values]
        return np.array(rows, np.int64).reshape(count, length), np.array(
            [[int(c) for c in f"{math.isqrt(v):0{k}b}"] for v in values], np.int64)

    def answer(self, tokens):
        x = self.check_input(tokens)
        if x.max() > 1:
            raise ValueError(f"{self.name}: bits only (ids 0, 1), got {x.max()}")
        root = math.isqrt(int("".join(map(str, x)), 2))
        return np.array([int(c) for c in f"{root:0{self.output_length(len(x))}b}"])


class BucketSort(ChomskyTask):
    """Symbols 0..4 (ids 0..4); answer them sorted in increasing order."""

    name, level = "bucket_sort", "cs"
    vocab_size = output_size = 5

    def output_length(self, input_length):
        return input_length

    def generate(self, rng, count, length):
        x = rng.integers(0, 5, (count, length))
        counts = np.stack([(x == v).sum(1) for v in range(5)], axis=1)  # [count, 5]
        return x, np.stack([np.repeat(np.arange(5), c) for c in counts])

    def answer(self, tokens):
        return np.sort(self.check_input(tokens))


TASKS = (DuplicateString, MissingDuplicateString, OddsFirst, BinaryAddition,
         BinaryMultiplication, ComputeSqrt, BucketSort)
