"""The regular tasks: even pairs, modular arithmetic, parity check, cycle navigation.

Each answers one token (class) after its whole input. Token ids are the
reference generators' (google-deepmind/neural_networks_chomsky_hierarchy).
"""

import numpy as np

from mannlab.tasks.chomsky.base import ChomskyTask

MODULUS = 5
"""Modular arithmetic's modulus and cycle navigation's cycle length (the paper's 5)."""


class EvenPairs(ChomskyTask):
    """Bits in (ids 0, 1); answer 1 if the number of ``01`` and ``10`` pairs
    is odd, else 0. Examples: 0 0 1 1 1 0 (one 01, one 10) -> 0; 0 1 0 1 0 0 1
    (three 01, two 10) -> 1."""

    name, level = "even_pairs", "regular"
    vocab_size = output_size = 2

    def generate(self, rng, count, length):
        x = rng.integers(0, 2, (count, length))
        # as many 01 as 10 pairs (up to one) <=> the string ends where it begins
        return x, (x[:, :1] != x[:, -1:]).astype(np.int64)

    def answer(self, tokens):
        x = self.check_input(tokens)
        if x.max(initial=0) > 1:
            raise ValueError(f"{self.name}: bits only (ids 0, 1), got {x.max()}")
        return np.array([int(np.sum(x[1:] != x[:-1])) % 2])


class ParityCheck(ChomskyTask):
    """Bits in (ids 0, 1); answer the number of 1s modulo 2."""

    name, level = "parity_check", "regular"
    vocab_size = output_size = 2

    def generate(self, rng, count, length):
        x = rng.integers(0, 2, (count, length))
        return x, np.bitwise_xor.reduce(x, axis=1)[:, None]

    def answer(self, tokens):
        x = self.check_input(tokens)
        return np.array([int(np.count_nonzero(x == 1)) % 2])


class CycleNavigation(ChomskyTask):
    """Moves on a cycle of 5 positions, starting at 0: id 0 = one step
    left, 1 = stay, 2 = one step right (the reference's ids: move = id - 1);
    answer the final position 0..4. Example: 2 0 1 0 0 -> -2 -> 3."""

    name, level = "cycle_navigation", "regular"
    vocab_size, output_size = 3, MODULUS

    def generate(self, rng, count, length):
        x = rng.integers(0, 3, (count, length))
        return x, ((x - 1).sum(1) % MODULUS)[:, None]

    def answer(self, tokens):
        position = 0
        for move in self.check_input(tokens):
            position = (position + int(move) - 1) % MODULUS
        return np.array([position])


PLUS, MINUS, TIMES, BLANK = MODULUS, MODULUS + 1, MODULUS + 2, MODULUS + 3
"""Modular arithmetic's operator ids (the reference's OP_BY_CHARACTER + modulus):
digits are 0..4, then ``+ - * _``."""


class ModularArithmetic(ChomskyTask):
    """An expression ``d op d op ... d`` of digits 0..4 (ids 0..4) and
    operators ``+`` 5, ``-`` 6, ``*`` 7 (usual precedence: products first);
    answer its value modulo 5. An input has odd length: a length L gives
    L tokens if L is odd, L - 1 if even (as the reference). Id 8 (``_``, a
    blank the generators never draw) reads as ``+`` in an operator's place
    and as 0 in a digit's. Example: 1 + 2 * 3 -> 7 -> 2; 1 - 1 - 1 -> 4."""

    name, level = "modular_arithmetic", "regular"
    vocab_size, output_size = MODULUS + 4, MODULUS

    def input_length(self, length):
        return length if length % 2 else length - 1

    def generate(self, rng, count, length):
        n = self.input_length(length)
        x = np.zeros((count, n), np.int64)
        x[:, 0::2] = rng.integers(0, MODULUS, (count, n // 2 + 1))
        x[:, 1::2] = rng.choice([PLUS, TIMES, MINUS], (count, n // 2))
        # left to right: `done` holds the finished terms' sum, `term` the open product
        done, term = np.zeros(count, np.int64), x[:, 0].copy()
        for i in range(1, n, 2):
            op, d = x[:, i], x[:, i + 1]
            done = np.where(op == TIMES, done, done + term)
            term = np.where(op == TIMES, term * d, np.where(op == PLUS, d, -d)) % MODULUS
        return x, ((done + term) % MODULUS)[:, None]

    def answer(self, tokens):
        x = self.check_input(tokens)
        if len(x) % 2 == 0:
            raise ValueError(f"{self.name}: an expression has odd length, got {len(x)}")
        digits, ops = x[0::2], x[1::2]
        if np.any((digits >= MODULUS) & (digits != BLANK)) or np.any(ops < MODULUS):
            raise ValueError(f"{self.name}: expected digit, operator, digit, ... (ids 0-4 "
                             f"at even places, 5-8 at odd), got {x.tolist()}")
        digits = np.where(digits == BLANK, 0, digits)
        ops = np.where(ops == BLANK, PLUS, ops)
        terms = [[int(digits[0])]]  # each additive term: its factors, sign on the first
        for op, d in zip(ops, digits[1:]):
            if op == TIMES:
                terms[-1].append(int(d))
            else:
                terms.append([int(d) if op == PLUS else -int(d)])
        total = 0
        for factors in terms:
            product = 1
            for f in factors:
                product = product * f % MODULUS
            total += product
        return np.array([total % MODULUS])


TASKS = (EvenPairs, ModularArithmetic, ParityCheck, CycleNavigation)
