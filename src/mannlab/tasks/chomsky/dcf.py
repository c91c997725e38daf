"""The deterministic context-free tasks: modular arithmetic with brackets,
reverse string, stack manipulation, solve equation.

Token ids are the reference generators'
(google-deepmind/neural_networks_chomsky_hierarchy). The two bracket tasks
have different ids for the same symbols, as there: modular arithmetic with
brackets ``0-4 + - * ( ) x`` = 0..10, solve equation ``0-4 + - ( ) x =`` =
0..10.
"""

import numpy as np

from mannlab.tasks.chomsky.base import ChomskyTask

MODULUS = 5
"""The bracket tasks' modulus (the paper's 5)."""


def random_expression(rng: np.random.Generator, length: int, multiply: bool) -> tuple[str, int]:
    """A random bracketed expression of exactly `length` characters and its
    value modulo 5, drawn as the reference draws them: lengths 1-4 are
    ``d``, ``-d``, ``(d)``, ``(-d)``; longer ones ``(left op right)`` with
    the left part's length uniform in 1 .. length - 4 and the operator
    uniform in ``+ -`` (and ``*`` if `multiply`)."""
    if length < 1:
        raise ValueError(f"expression length must be >= 1, got {length}")
    if length <= 4:
        d = int(rng.integers(MODULUS))
        text = ("{}", "-{}", "({})", "(-{})")[length - 1].format(d)
        return text, (-d if length % 2 == 0 else d) % MODULUS
    left = int(rng.integers(1, length - 3))
    left_text, a = random_expression(rng, left, multiply)
    right_text, b = random_expression(rng, length - 3 - left, multiply)
    op = "+-*"[int(rng.integers(3 if multiply else 2))]
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return f"({left_text}{op}{right_text})", value % MODULUS


PRECEDENCE = {"+": 1, "-": 1, "*": 2, "neg": 3}


def evaluate(text: str) -> int:
    """The value modulo 5 of an expression of digits 0-4, ``+ - *``, brackets
    and unary minus (usual precedence), without recursion (any nesting
    depth). ValueError if it is not well formed."""
    values: list[int] = []
    ops: list[str] = []

    def apply(op: str) -> None:
        if op == "neg":
            values.append(-values.pop() % MODULUS)
            return
        b, a = values.pop(), values.pop()
        values.append((a + b if op == "+" else a - b if op == "-" else a * b) % MODULUS)

    operand_next = True  # an operand (digit, bracket or unary minus) must come next
    for c in text:
        if c.isdigit() and int(c) < MODULUS and operand_next:
            values.append(int(c))
            operand_next = False
        elif c == "(" and operand_next:
            ops.append(c)
        elif c == "-" and operand_next:
            ops.append("neg")
        elif c == ")" and not operand_next and "(" in ops:
            while ops[-1] != "(":
                apply(ops.pop())
            ops.pop()
        elif c in "+-*" and not operand_next:
            while ops and ops[-1] != "(" and PRECEDENCE[ops[-1]] >= PRECEDENCE[c]:
                apply(ops.pop())
            ops.append(c)
            operand_next = True
        else:
            raise ValueError(f"not a well-formed expression: {text!r}")
    if operand_next or "(" in ops:
        raise ValueError(f"not a well-formed expression: {text!r}")
    while ops:
        apply(ops.pop())
    return values[0]


class ModularArithmeticBrackets(ChomskyTask):
    """A bracketed expression over digits 0-4 with ``+ - *`` and unary
    minus (ids: digits 0-4, ``+`` 5, ``-`` 6, ``*`` 7, ``(`` 8, ``)`` 9,
    ``x`` 10, never drawn); answer its value modulo 5. The paper's setting
    (the reference's TASK_BUILDERS: ``mult=True``). Example:
    ``(1-(-3*2))`` -> 1 - (-6) = 7 -> 2."""

    name, level = "modular_arithmetic_brackets", "dcf"
    vocab_size, output_size = MODULUS + 6, MODULUS
    SYMBOLS = "01234+-*()x"

    def generate(self, rng, count, length):
        pairs = [random_expression(rng, length, multiply=True) for _ in range(count)]
        ids = {c: i for i, c in enumerate(self.SYMBOLS)}
        return (np.array([[ids[c] for c in text] for text, _ in pairs], np.int64).reshape(
            count, length), np.array([[value] for _, value in pairs], np.int64))

    def answer(self, tokens):
        text = "".join(self.SYMBOLS[t] for t in self.check_input(tokens))
        return np.array([evaluate(text)])


class SolveEquation(ChomskyTask):
    """An equation ``expression = d`` whose expression (brackets, ``+ -``,
    unary minus, no ``*``: the solution is unique) holds one unknown ``x``
    in a digit's place; answer the digit x (0..4). Ids: digits 0-4, ``+``
    5, ``-`` 6, ``(`` 7, ``)`` 8, ``x`` 9, ``=`` 10. The expression has
    length - 2 characters; lengths 1 and 2, which hold no equation, are
    all-zero inputs answering 0 (the reference's convention). Example:
    ``(x-2)=4`` -> 1."""

    name, level = "solve_equation", "dcf"
    vocab_size, output_size = MODULUS + 6, MODULUS
    SYMBOLS = "01234+-()x="

    def generate(self, rng, count, length):
        if length < 3:
            return np.zeros((count, length), np.int64), np.zeros((count, 1), np.int64)
        ids = {c: i for i, c in enumerate(self.SYMBOLS)}
        inputs, outputs = [], []
        for _ in range(count):
            text, value = random_expression(rng, length - 2, multiply=False)
            i = int(rng.integers(len(text)))  # a random place, moved on to the next digit
            while not text[i].isdigit():
                i = (i + 1) % len(text)
            inputs.append([ids[c] for c in f"{text[:i]}x{text[i + 1:]}={value}"])
            outputs.append([int(text[i])])
        return np.array(inputs, np.int64), np.array(outputs, np.int64)

    def answer(self, tokens):
        x = self.check_input(tokens)
        if len(x) < 3 and not x.any():
            return np.array([0])
        text = "".join(self.SYMBOLS[t] for t in x)
        if text.count("=") != 1 or text.count("x") != 1 or "x" not in text.split("=")[0]:
            raise ValueError(f"{self.name}: expected 'expression with one x = value', got "
                             f"{text!r}")
        left, right = text.split("=")
        target = evaluate(right)
        solutions = [d for d in range(MODULUS) if evaluate(left.replace("x", str(d))) == target]
        if len(solutions) != 1:
            raise ValueError(f"{self.name}: {text!r} has {len(solutions)} solutions")
        return np.array(solutions)


class ReverseString(ChomskyTask):
    """Bits in (ids 0, 1); answer them in reverse order."""

    name, level = "reverse_string", "dcf"
    vocab_size = output_size = 2

    def output_length(self, input_length):
        return input_length

    def generate(self, rng, count, length):
        x = rng.integers(0, 2, (count, length))
        return x, x[:, ::-1].copy()

    def answer(self, tokens):
        return self.check_input(tokens)[::-1].copy()


POP, PUSH_0, PUSH_1 = 2, 3, 4
END = 2
"""Stack manipulation's action ids, and the output's end token."""


class StackManipulation(ChomskyTask):
    """A stack of bits given bottom to top (ids 0, 1), then actions ``POP`` 2,
    ``PUSH 0`` 3, ``PUSH 1`` 4 (a POP of an empty stack does nothing);
    answer the final stack top to bottom, then the end token 2, padded with
    0 to length + 1 tokens (only the tokens up to the end token count for
    accuracy). A bit in the input pushes itself, so the initial stack is read
    as pushes. Example: 0 1 1 0 PUSH1 POP POP -> 1 1 0 END 0 0 0 0."""

    name, level = "stack_manipulation", "dcf"
    vocab_size, output_size = 5, 3
    end_token = END

    def output_length(self, input_length):
        return input_length + 1

    def generate(self, rng, count, length):
        inputs, outputs = [], []
        for _ in range(count):
            if length == 1:
                stack = list(rng.integers(0, 2, 1))
                inputs.append(stack)
            else:
                stack = list(rng.integers(0, 2, int(rng.integers(1, length))))
                actions = rng.integers(POP, PUSH_1 + 1, length - len(stack))
                inputs.append(stack + list(actions))
                for a in actions:
                    if a != POP:
                        stack.append(a - PUSH_0)
                    elif stack:
                        stack.pop()
            outputs.append(stack[::-1] + [END] + [0] * (length - len(stack)))
        return np.array(inputs, np.int64), np.array(outputs, np.int64)

    def answer(self, tokens):
        x = self.check_input(tokens)
        stack: list[int] = []
        for t in x:
            if t == POP:
                stack = stack[:-1]
            else:
                stack.append(int(t) % 3)  # 0, 1 and PUSH 0 (3), PUSH 1 (4)
        out = stack[::-1] + [END]
        return np.array(out + [0] * (self.output_length(len(x)) - len(out)))


TASKS = (ModularArithmeticBrackets, ReverseString, StackManipulation, SolveEquation)
