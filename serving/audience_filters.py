"""Filters over an audience's columns: a small, safe expression language.

An expression is parsed with :mod:`ast` and checked against a whitelist of node types before
anything is evaluated; nothing is ever passed to ``eval``. What is allowed:

- column names (the audience's feature columns), numbers, strings, ``True``/``False``, lists or
  tuples of numbers or strings (for ``in``);
- comparisons ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (chains such as ``1 <= recency < 6`` too),
  ``in`` and ``not in`` a list, and column against column of the same type;
- ``and``, ``or``, ``not`` and parentheses; a column alone is true where it is "truthy" (a numeric
  column non-zero, a categorical one ``1``/``true``/``yes``/``y``/``t`` in any case).

Numeric columns compare with numbers, categorical ones with strings (only ``==``, ``!=``, ``in``,
``not in``). A missing value (NaN, or ``""``) matches no comparison, ``!=`` included; ``not (...)``
of it matches. Errors are :class:`serving.errors.InvalidError` naming the unknown column or the
operator that is not allowed.

Evaluation is vectorized with numpy: one boolean array of shape ``(n,)`` per node.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from serving.errors import InvalidError

MAX_EXPRESSION_CHARS = 4000
"""Longest filter expression accepted."""
MAX_NODES = 500
"""Most syntax nodes (names, constants, operators) one expression may have."""
TRUTHY = ("1", "true", "yes", "y", "t")
"""Categorical values a column alone (``not newbie``) counts as true, in any case."""

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}
_SYMBOL = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_ALLOWED = "and, or, not, ==, !=, <, <=, >, >=, in, not in, parentheses"
_FIELD: list[str | int] = ["expression"]


def _refuse(message: str) -> InvalidError:
    return InvalidError(message, _FIELD)


def _op_name(node: ast.AST) -> str:
    """How the user wrote an operator or construct, for the error message."""
    names = {
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.Div: "/",
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.Pow: "**",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.Invert: "~",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.Call: "a function call",
        ast.Attribute: "attribute access (.)",
        ast.Subscript: "indexing ([...])",
        ast.Lambda: "lambda",
        ast.IfExp: "if/else",
        ast.NamedExpr: ":=",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.JoinedStr: "an f-string",
        ast.Starred: "*",
    }
    op = node.op if isinstance(node, ast.BinOp | ast.UnaryOp) else node
    return names.get(type(op), type(op).__name__)


def parse_filter(expression: str) -> ast.Expression:
    """The syntax tree of ``expression`` once every node is on the whitelist.

    Raises:
        InvalidError: empty, too long, not valid syntax, or a construct that is not allowed
            (naming it).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise _refuse("the filter expression is empty")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise _refuse(f"the filter expression is longer than {MAX_EXPRESSION_CHARS} characters")
    if "\x00" in expression:
        raise _refuse("the filter expression contains a NUL character")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise _refuse(f"the filter expression is not valid syntax ({err.msg}, column {err.offset})") from None
    except (RecursionError, MemoryError):
        raise _refuse("the filter expression is nested too deeply") from None
    except ValueError as err:  # e.g. an integer literal of thousands of digits
        raise _refuse(f"the filter expression cannot be read ({str(err)[:100]})") from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise _refuse(f"the filter expression has more than {MAX_NODES} parts")
    for node in nodes:
        ok = isinstance(
            node,
            ast.Expression
            | ast.BoolOp
            | ast.And
            | ast.Or
            | ast.Compare
            | ast.Name
            | ast.Load
            | ast.Constant
            | ast.List
            | ast.Tuple,
        ) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd))
        ok = ok or (isinstance(node, ast.cmpop) and type(node) in _SYMBOL)
        ok = ok or isinstance(node, ast.Not | ast.USub | ast.UAdd)
        if not ok:
            raise _refuse(f"operator {_op_name(node)!r} is not allowed in a filter (allowed: {_ALLOWED})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool | int | float | str):
            raise _refuse(f"the constant {node.value!r} is not allowed (numbers, strings, True, False)")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise _refuse(f"unknown column {node.id!r}")
    return tree


class _Evaluator:
    """Evaluates a checked tree over columns of shape ``(n,)``."""

    def __init__(self, columns: Mapping[str, NDArray[Any]], column_types: Mapping[str, str], n: int) -> None:
        self.columns, self.types, self.n = columns, column_types, n

    def column(self, name: str) -> tuple[NDArray[Any], str]:
        if name not in self.columns or name not in self.types:
            known = ", ".join(sorted(self.columns)[:30]) or "none"
            raise _refuse(f"unknown column {name!r} (columns: {known})")
        return self.columns[name], self.types[name]

    def truthy(self, node: ast.expr) -> NDArray[np.bool_]:
        """A boolean node's value, shape ``(n,)``."""
        if isinstance(node, ast.BoolOp):
            parts = [self.truthy(v) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = parts[0]
            for p in parts[1:]:
                out = combine(out, p)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return np.logical_not(self.truthy(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            if node.id in ("True", "False") and node.id not in self.columns:
                return np.full(self.n, node.id == "True")
            values, kind = self.column(node.id)
            if kind == "numeric":
                return np.asarray((values != 0) & ~np.isnan(values), dtype=bool)
            return np.isin(np.char.lower(values.astype(str)), TRUTHY)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return np.full(self.n, node.value)
        raise _refuse(f"{ast.unparse(node)!r} is not a condition (compare it, e.g. with ==)")

    def operand(self, node: ast.expr) -> tuple[Any, str, bool]:
        """A comparison operand: its value, type (``numeric``/``categorical``) and whether it is
        a column (an array) rather than a constant."""
        if isinstance(node, ast.Name):
            if node.id in ("True", "False") and node.id not in self.columns:
                return float(node.id == "True"), "numeric", False
            values, kind = self.column(node.id)
            return values, kind, True
        return self.constant(node), self.kind_of(self.constant(node)), False

    def constant(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool | int | float):
                try:
                    x = float(v)
                except OverflowError:
                    x = math.inf
                if not math.isfinite(x):
                    raise _refuse("a number in the filter is too large (not finite as a float)")
                return x
            return v
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = self.constant(node.operand)
            if not isinstance(v, float):
                raise _refuse(f"{ast.unparse(node)!r}: a sign goes before a number only")
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.constant(e) for e in node.elts]
            if any(isinstance(i, list) for i in items):
                raise _refuse("lists inside lists are not allowed")
            return items
        raise _refuse(f"{ast.unparse(node)!r} is not a value (a number, a string or a list)")

    @staticmethod
    def kind_of(value: Any) -> str:
        if isinstance(value, list):
            kinds = {"numeric" if isinstance(v, float) else "categorical" for v in value}
            if len(kinds) > 1:
                raise _refuse("a list mixes numbers and strings")
            return kinds.pop() if kinds else "list"
        return "numeric" if isinstance(value, float) else "categorical"

    def compare(self, node: ast.Compare) -> NDArray[np.bool_]:
        out = np.ones(self.n, dtype=bool)
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            out &= self.one(left, op, right)
            left = right
        return out

    def one(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> NDArray[np.bool_]:
        symbol = _SYMBOL[type(op)]
        a, ka, a_col = self.operand(left)
        b, kb, b_col = self.operand(right)
        if isinstance(op, ast.In | ast.NotIn):
            if not a_col or not isinstance(b, list):
                raise _refuse(f"'{symbol}' takes a column on the left and a list on the right")
            if kb not in (ka, "list"):
                raise _refuse(f"column {ast.unparse(left)!r} is {ka}: its list must hold {_kinds(ka)}")
            values = np.asarray(a)
            present = _present(values, ka)
            hit = np.isin(values, np.asarray(b, dtype=float if ka == "numeric" else str)) if b else ~present
            hit = hit & present
            return hit if isinstance(op, ast.In) else ~hit & present
        if not (a_col or b_col):
            raise _refuse(
                f"{ast.unparse(left)} {symbol} {ast.unparse(right)}: compare a column, not two values"
            )
        if kb == "list" or ka == "list" or isinstance(a, list) or isinstance(b, list):
            raise _refuse(f"a list goes with 'in' or 'not in', not '{symbol}'")
        if ka != kb:
            col = ast.unparse(left if a_col else right)
            kind = ka if a_col else kb
            raise _refuse(f"column {col!r} is {kind}: compare it with {_kinds(kind)}")
        if ka == "categorical" and not isinstance(op, ast.Eq | ast.NotEq):
            col = ast.unparse(left if a_col else right)
            raise _refuse(f"column {col!r} is categorical: use ==, !=, in or not in, not '{symbol}'")
        present = np.ones(self.n, dtype=bool)
        if a_col:
            present &= _present(np.asarray(a), ka)
        if b_col:
            present &= _present(np.asarray(b), kb)
        with np.errstate(invalid="ignore"):
            result = np.asarray(_COMPARE[type(op)](a, b), dtype=bool)
        return np.broadcast_to(result, (self.n,)) & present


def _kinds(kind: str) -> str:
    return "numbers" if kind == "numeric" else "strings (in quotes)"


def _present(values: NDArray[Any], kind: str) -> NDArray[np.bool_]:
    """Where a column has a value, shape ``(n,)``."""
    if kind == "numeric":
        return np.asarray(~np.isnan(values.astype(float)), dtype=bool)
    return np.asarray(values != "", dtype=bool)


def evaluate_filter(
    expression: str, columns: dict[str, NDArray[Any]], column_types: dict[str, str], n: int | None = None
) -> NDArray[np.bool_]:
    """Where ``expression`` holds, over an audience's feature columns.

    Args:
        expression: e.g. ``recency <= 6 and channel == "Web"`` (see the module's documentation).
        columns: column name -> shape ``(n,)`` array: float64 with NaN for missing (numeric),
            or a numpy ``U`` array with ``""`` for missing (categorical).
        column_types: column name -> ``"numeric"`` or ``"categorical"``.
        n: the number of rows (default: the columns' length; needed when there are none).

    Returns:
        A boolean array of shape ``(n,)``.

    Raises:
        InvalidError: bad syntax, an operator that is not allowed, an unknown column, or a
            comparison of a column with a value of the other type (the message names it).
    """
    tree = parse_filter(expression)
    if n is None:
        n = len(next(iter(columns.values()))) if columns else 0
    result = _Evaluator(columns, column_types, n).truthy(tree.body)
    return np.array(np.broadcast_to(result, (n,)), dtype=bool)


def check_filter(expression: str, column_types: Mapping[str, str]) -> None:
    """Check ``expression`` against an audience's columns without data (a saved filter).

    Raises:
        InvalidError: as :func:`evaluate_filter`.
    """
    empty = {
        c: np.zeros(0, dtype=float) if t == "numeric" else np.zeros(0, dtype="U1")
        for c, t in column_types.items()
    }
    _Evaluator(empty, dict(column_types), 0).truthy(parse_filter(expression).body)
