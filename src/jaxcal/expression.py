"""Models written as text: ``"b1*(1-exp(-b2*t_u))"`` read into a :class:`~jaxcal.core.ModelSpec`.

The text is read by Python's own parser (``ast.parse(text, mode="eval")``) and the tree is walked
against a whitelist: the reading ``t_u``, named parameters, numbers, ``+ - * / **``, unary ``-``
and ``+``, parentheses, the constant ``pi`` and the functions of :data:`FUNCTIONS`. Anything else
is refused in one line that names the offending part and its column. The text is never evaluated
or compiled as Python: the walk builds the model from ``jax.numpy`` operations alone.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ._checks import InvalidInput, InvalidType
from .core import ModelSpec

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "parse_model"]

#: The functions an expression may call: each takes one argument. Each has its ``jax.numpy`` form
#: (what the model computes) and its ``math`` form (what folds a constant argument at parse time,
#: in float64 whatever the model later computes in, as Python folds ``2 * pi`` in a written model).
FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[[float], float]]] = {
    "exp": (jnp.exp, math.exp),
    "log": (jnp.log, math.log),
    "sqrt": (jnp.sqrt, math.sqrt),
    "sin": (jnp.sin, math.sin),
    "cos": (jnp.cos, math.cos),
    "tan": (jnp.tan, math.tan),
    "arctan": (jnp.arctan, math.atan),
    "tanh": (jnp.tanh, math.tanh),
    "abs": (jnp.abs, abs),
}

#: Each function's NumPy form: a model given NumPy values (no JAX array, no tracer) computes with NumPy,
#: in their dtype (float64 readings and params give float64 whether or not JAX's x64 is on), as the
#: named models do; inside a fit (JAX values) the ``jax.numpy`` form runs.
_NUMPY: dict[str, Callable[..., Any]] = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
                                        "tan": np.tan, "arctan": np.arctan, "tanh": np.tanh, "abs": np.abs}


def _on_host(value: Any) -> bool:
    """Whether a value is NumPy's or Python's (not a JAX array, nor a tracer)."""
    return isinstance(value, (np.ndarray, np.generic, float, int))


#: The longest text read, in characters, and the deepest nesting of operations in it: a bound on
#: the parser's and the model's recursion whatever the text.
MAX_LENGTH = 2000
MAX_DEPTH = 100

READING = "t_u"
CONSTANTS = {"pi": math.pi}
_BINARY = {ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub), ast.Mult: ("*", operator.mul),
           ast.Div: ("/", operator.truediv), ast.Pow: ("**", operator.pow)}
_OTHER_OPERATORS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
                    ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^"}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
# Python ints beyond this become floats: JAX would otherwise give them an integer dtype of its own
_SMALL_INT = 2**31
# What the refused kinds of expression are called in a message
_REFUSED = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Compare: "comparisons",
    ast.BoolOp: "'and'/'or'", ast.Lambda: "lambdas", ast.IfExp: "'if' expressions", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.Tuple: "tuples", ast.List: "lists", ast.Dict: "dicts", ast.Set: "sets",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generators", ast.JoinedStr: "strings", ast.Slice: "slices", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield'",
}

# The kinds of a piece of the model, as far as linearity in the params goes: a constant, a function
# of t_u alone, linear in the params (a sum of param * column), affine (linear plus a constant or
# t_u term), or anything else.
CONST, DATA, LINEAR, AFFINE, NONLINEAR = "const", "data", "linear", "affine", "nonlinear"


class _Piece(NamedTuple):
    """One node of the model: a Python number (``value``) or ``run(t_u, params) -> array``."""

    kind: str
    value: int | float | None = None
    run: Callable[[Any, tuple[Any, ...]], Any] | None = None
    # for a linear or affine piece: each param's design column varies with t_u (True) or is constant
    columns: tuple[tuple[str, bool], ...] = ()

    def evaluate(self, t_u: Any, params: tuple[Any, ...]) -> Any:
        return self.value if self.run is None else self.run(t_u, params)


class _Refused(Exception):
    def __init__(self, problem: str, column: int) -> None:
        super().__init__(problem)
        self.problem, self.column = problem, column


def parse_model(text: str) -> ModelSpec:
    """The model a text describes, as a :class:`~jaxcal.core.ModelSpec` jaxcal fits like any other.

    The text is an expression in ``t_u`` (the readings), named parameters (any other identifier:
    ``b1``, ``w``), numbers (``5e-4``, ``1.``, ``.5``), ``+ - * / **``, unary ``-``/``+``, parentheses,
    the constant ``pi`` and the functions ``exp log sqrt sin cos tan arctan tanh abs``. It is read
    by Python's parser and built from ``jax.numpy`` operations; it is never evaluated as Python.
    The same text gives the same :class:`ModelSpec` (and function) every time, so a fit compiles once.

    Args:
      text: the expression. Runs of whitespace (newlines too) count as one space.

    Returns:
      A :class:`ModelSpec` whose ``fn(t_u, *params)`` computes the expression: ``param_names`` in the
      order they first appear in the text, ``name`` the text with its whitespace normalised, ``init``
      None (the caller gives the start), ``linear`` when the expression is provably linear (affine) in
      the params (a sum of terms each a param times a function of ``t_u``, or free of params), and
      ``intercept`` when it is linear and some param's design column is constant. A text without
      ``t_u`` is a constant model, its value repeated for every reading.

    Raises:
      InvalidInput: one line, ``model: '<text>': <problem> at column <n>`` (columns count from 1), for
        anything outside the grammar above, a text with no parameter, one longer than
        :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH`.
      InvalidType: for a ``text`` that is not a string.

    >>> spec = parse_model("b1 * (1 - exp(-b2 * t_u))")
    >>> spec.param_names, spec.linear
    (('b1', 'b2'), False)
    >>> import jax.numpy as jnp
    >>> spec.fn(jnp.array([0.0, 1.0]), 2.0, jnp.log(2.0))
    Array([0., 1.], dtype=float32)
    >>> parse_model("w * t_u + b")[1:6]
    (('w', 'b'), None, 'w * t_u + b', True, True)
    """
    if not isinstance(text, str):
        raise InvalidType(f"model: an expression must be a string, got {type(text).__name__}")
    return _parse(" ".join(text.split()))


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> ModelSpec:
    try:
        return _build(text)
    except _Refused as refused:
        raise InvalidInput("model", f"{_shown(text)}: {refused.problem} at column {refused.column}") from None


def _shown(text: str) -> str:
    # the text in quotes, bounded: a message stays one readable line whatever the text's length
    return repr(text) if len(text) <= 120 else repr(text[:100]) + f" (+{len(text) - 100} characters)"


def _build(text: str) -> ModelSpec:
    if not text:
        raise _Refused("empty: write the model as an expression in t_u, e.g. 'w * t_u + b'", 1)
    if len(text) > MAX_LENGTH:
        raise _Refused(f"longer than {MAX_LENGTH} characters ({len(text)})", MAX_LENGTH + 1)
    for i, char in enumerate(text):
        # ASCII only: parameter names the command line can name, and ast columns (UTF-8 bytes) that
        # are character columns
        if not " " <= char <= "~":
            raise _Refused(f"character {char!r} is not allowed (ASCII letters, digits, operators)", i + 1)
        if char == "#":  # Python would read the rest as a comment and silently drop it
            raise _Refused("'#' is not allowed", i + 1)
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise _Refused(f"syntax error: {error.msg or 'invalid syntax'}", error.offset or 1) from None
    except (RecursionError, MemoryError):  # the parser's own bound on nesting
        raise _Refused(f"nested deeper than {MAX_DEPTH}", 1) from None
    _check_depth(tree)

    params: dict[str, None] = {}  # in the order of first appearance (ast nodes are visited in text order)
    piece = _Walker(text, params).walk(tree)
    names = tuple(params)
    if not names:
        raise _Refused("no parameters: name at least one (any identifier other than t_u, pi and the "
                       "functions), e.g. 'w * t_u + b'", 1)
    uses_reading = any(isinstance(node, ast.Name) and node.id == READING for node in ast.walk(tree))
    linear = piece.kind in (LINEAR, AFFINE)
    intercept = linear and any(not varies for _, varies in piece.columns)
    fn = _function(piece, names, uses_reading, text)
    return ModelSpec(fn, names, None, text, linear=linear, intercept=intercept, formula=text)


def _check_depth(tree: ast.expr) -> None:
    # iterative: a deep tree must meet this bound, never Python's recursion limit
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH}", getattr(node, "col_offset", 0) + 1)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))


def _function(piece: _Piece, names: tuple[str, ...], uses_reading: bool, text: str) -> Callable[..., Any]:
    n = len(names)

    def fn(t_u: Any, *params: Any) -> Any:
        if len(params) != n:
            raise TypeError(f"the model {text!r} takes {n} params ({', '.join(names)}), got {len(params)}")
        out = piece.evaluate(t_u, params)
        # a model without t_u (or a constant fold) still gives one prediction per reading
        if uses_reading:
            return out
        return np.broadcast_to(out, np.shape(t_u)) if _on_host(out) and _on_host(t_u) else jnp.broadcast_to(
            out, jnp.shape(t_u))

    fn.__name__ = fn.__qualname__ = "expression"
    fn.__doc__ = f"The model ``t_p = {text}``."
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in (READING, *names)])
    return fn


def _number(value: Any, column: int, what: str) -> int | float:
    """A Python number the model may hold: a small int (``t_u ** 2`` stays an integer power, as in a
    written model) or a finite float."""
    if isinstance(value, complex):
        raise _Refused(f"{what} is not a real number", column)
    if isinstance(value, int) and abs(value) < _SMALL_INT:
        return value
    try:
        value = float(value)
    except OverflowError:
        raise _Refused(f"{what} is too large", column) from None
    if not math.isfinite(value):
        raise _Refused(f"{what} is not a finite number", column)
    return value


def _fold(op: Callable[..., Any], a: int | float, b: int | float, symbol: str, column: int, what: str) -> int | float:
    # a constant operation, done once here in Python as in a written model, bounded: an integer power
    # only up to 64 (9**9**9 would never finish), any other as float
    if symbol == "**" and not (isinstance(a, int) and isinstance(b, int) and 0 <= b <= 64):
        a, b = float(a), float(b)
    try:
        return _number(op(a, b), column, what)
    except (ZeroDivisionError, OverflowError, ValueError):
        raise _Refused(f"{what} is not a finite number", column) from None


class _Walker:
    def __init__(self, text: str, params: dict[str, None]) -> None:
        self.text, self.params = text, params

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or type(node).__name__

    def walk(self, node: ast.expr) -> _Piece:
        column = node.col_offset + 1
        if isinstance(node, ast.Constant):
            return self.constant(node, column)
        if isinstance(node, ast.Name):
            return self.name(node, column)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, column)
        if isinstance(node, ast.Call):
            return self.call(node, column)
        if isinstance(node, ast.Attribute):
            raise _Refused(f"attribute access '.{node.attr}' is not allowed", node.value.end_col_offset + 1)
        if isinstance(node, ast.Subscript):
            raise _Refused(f"subscripts are not allowed: '{self.segment(node)}'", column)
        if isinstance(node, ast.Compare):
            raise _Refused(f"comparisons are not allowed: '{self.segment(node)}'", column)
        what = _REFUSED.get(type(node), type(node).__name__)
        raise _Refused(f"{what} are not allowed: '{self.segment(node)}'", column)

    def constant(self, node: ast.Constant, column: int) -> _Piece:
        value = node.value
        if isinstance(value, str | bytes):
            raise _Refused(f"strings are not allowed: {self.segment(node)}", column)
        if type(value) not in (int, float):  # True, None, ..., 1j
            raise _Refused(f"'{self.segment(node)}' is not a number", column)
        return _Piece(CONST, _number(value, column, f"the number '{self.segment(node)}'"))

    def name(self, node: ast.Name, column: int) -> _Piece:
        name = node.id
        if name == READING:
            return _Piece(DATA, run=lambda t_u, params: t_u)
        if name in CONSTANTS:
            return _Piece(CONST, CONSTANTS[name])
        if name in FUNCTIONS:
            raise _Refused(f"'{name}' is a function: call it, {name}(...)", column)
        self.params.setdefault(name)
        index = list(self.params).index(name)
        return _Piece(LINEAR, run=lambda t_u, params: params[index], columns=((name, False),))

    def binary(self, node: ast.BinOp) -> _Piece:
        op_type = type(node.op)
        # the operator's own column: the first non-space after the left operand (and its parentheses)
        at = node.left.end_col_offset
        while at < len(self.text) and self.text[at] in " )":
            at += 1
        column = at + 1
        if op_type not in _BINARY:
            symbol = _OTHER_OPERATORS.get(op_type, type(node.op).__name__)
            if op_type is ast.BitXor:
                raise _Refused("operator '^' is not allowed: use ** for powers", column)
            raise _Refused(f"operator '{symbol}' is not allowed (allowed: + - * / **)", column)
        symbol, op = _BINARY[op_type]
        left, right = self.walk(node.left), self.walk(node.right)
        if symbol == "/" and right.run is None and right.value == 0:
            raise _Refused(f"division by zero: '{self.segment(node)}'", column)
        if left.run is None and right.run is None:
            return _Piece(CONST, _fold(op, left.value, right.value, symbol, node.col_offset + 1,
                                       f"'{self.segment(node)}'"))
        kind, columns = _combined(symbol, left, right)

        def run(t_u: Any, params: tuple[Any, ...]) -> Any:
            return op(left.evaluate(t_u, params), right.evaluate(t_u, params))

        return _Piece(kind, run=run, columns=columns)

    def unary(self, node: ast.UnaryOp, column: int) -> _Piece:
        if type(node.op) not in _UNARY:
            symbol = {ast.Not: "not", ast.Invert: "~"}.get(type(node.op), type(node.op).__name__)
            raise _Refused(f"operator '{symbol}' is not allowed (allowed: unary - and +)", column)
        op = _UNARY[type(node.op)]
        inner = self.walk(node.operand)
        if inner.run is None:
            return _Piece(CONST, op(inner.value))
        return _Piece(inner.kind, run=lambda t_u, params: op(inner.evaluate(t_u, params)), columns=inner.columns)

    def call(self, node: ast.Call, column: int) -> _Piece:
        allowed = ", ".join(FUNCTIONS)
        if not isinstance(node.func, ast.Name):
            raise _Refused(f"only the functions {allowed} can be called, not '{self.segment(node.func)}'", column)
        name = node.func.id
        if name not in FUNCTIONS:
            raise _Refused(f"unknown function '{name}' (allowed: {allowed})", column)
        if node.keywords:
            keyword = node.keywords[0]
            raise _Refused(f"{name}() takes no keywords: '{self.segment(keyword)}'", keyword.col_offset + 1)
        starred = next((arg for arg in node.args if isinstance(arg, ast.Starred)), None)
        if starred is not None:
            raise _Refused(f"'*' unpacking is not allowed: '{self.segment(starred)}'", starred.col_offset + 1)
        if len(node.args) != 1:
            raise _Refused(f"{name}() takes 1 argument, got {len(node.args)}: '{self.segment(node)}'", column)
        jax_fn, math_fn = FUNCTIONS[name]
        inner = self.walk(node.args[0])
        if inner.run is None:
            what = f"'{self.segment(node)}'"
            try:
                return _Piece(CONST, _number(math_fn(inner.value), column, what))
            except (OverflowError, ValueError):
                raise _Refused(f"{what} is not a finite number", column) from None
        kind = DATA if inner.kind == DATA else NONLINEAR
        numpy_fn = _NUMPY[name]

        def run(t_u: Any, params: tuple[Any, ...]) -> Any:
            value = inner.evaluate(t_u, params)
            return numpy_fn(value) if _on_host(value) else jax_fn(value)

        return _Piece(kind, run=run)


def _combined(symbol: str, left: _Piece, right: _Piece) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """The kind (and design columns) of ``left <symbol> right``, at least one of them not constant."""
    kinds = {left.kind, right.kind}
    free = {CONST, DATA}  # no params
    if NONLINEAR in kinds:
        return NONLINEAR, ()
    if kinds <= free:
        return DATA, ()
    if symbol in "+-":
        if left.kind in free or right.kind in free:
            return AFFINE, _merged(left.columns + right.columns)
        return (AFFINE if AFFINE in kinds else LINEAR), _merged(left.columns + right.columns)
    if symbol in ("*", "/"):
        scale = right if symbol == "/" or left.kind not in free else left
        other = left if scale is right else right
        if scale.kind in free:  # a param-free factor scales each column; one of t_u makes it vary
            varies = scale.kind == DATA
            return other.kind, tuple((name, column_varies or varies) for name, column_varies in other.columns)
    return NONLINEAR, ()  # params times params, divided by params, or in a power


def _merged(columns: tuple[tuple[str, bool], ...]) -> tuple[tuple[str, bool], ...]:
    merged: dict[str, bool] = {}
    for name, varies in columns:
        merged[name] = merged.get(name, False) or varies
    return tuple(merged.items())
