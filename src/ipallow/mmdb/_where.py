"""``--where``: a small, safe expression language over MaxMind DB records.

It is a subset of Python expression syntax, parsed with :mod:`ast` and turned
into closures node by node; a node of any type not listed here is refused with
its column, so nothing is ever evaluated as Python (no ``eval``, no calls, no
attribute access on objects: ``a.b`` only looks up key ``b`` in the map ``a``)::

    autonomous_system_number in {17557, 38193}
    country.iso_code == "PK" and not traits.is_anonymous_proxy
    subdivisions[0].iso_code != "SD" or location.accuracy_radius <= 50
    city.names["zh-CN"] == "卡拉奇"

* a field is a name, then ``.key``, ``["key"]`` or ``[index]`` steps into maps and
  arrays; a field the record lacks is ``None`` (so it equals nothing listed);
* literals: strings, integers, floats, ``True``, ``False``, ``None``, and sets,
  lists or tuples of them;
* ``==  !=  <  <=  >  >=  in  not in`` (chains too), ``and``, ``or``, ``not``;
  a bare field is true when present and truthy;
* a comparison that Python cannot make (``"PK" < 3``, ``None < 5``) is false, so
  records of another shape simply do not match.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Callable

__all__ = ["where", "WhereError"]


class WhereError(ValueError):
    """A --where expression that is not in the language; the message names the column."""

    def __init__(self, expression: str, column: int, message: str) -> None:
        self.expression, self.column = expression, column
        super().__init__(f"--where column {column}: {message}\n  {expression}\n  {' ' * (column - 1)}^")


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MISSING = None           # what a field the record lacks reads as


def _lookup(value: Any, step: Any) -> Any:
    if isinstance(value, dict):
        return value.get(step) if isinstance(step, str) else _MISSING
    if isinstance(value, list) and isinstance(step, int) and not isinstance(step, bool):
        return value[step] if -len(value) <= step < len(value) else _MISSING
    return _MISSING


class _Compiler:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.fields: set[str] = set()       # the top-level fields the expression reads

    def fail(self, node: ast.AST, message: str):
        raise WhereError(self.expression, getattr(node, "col_offset", 0) + 1, message)

    def literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, int, float))):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
            items = [self.literal(item) for item in node.elts]
            return frozenset(items) if isinstance(node, ast.Set) else tuple(items)
        self.fail(node, f"expected a literal (string, number, True/False/None, or a set of them), "
                        f"not {_describe(node)}")

    def path(self, node: ast.AST) -> list:
        """The steps of a field: ``a.b["c"][0]`` -> ["a", "b", "c", 0]."""
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Attribute):
            return self.path(node.value) + [node.attr]
        if isinstance(node, ast.Subscript):
            key = node.slice
            step = self.literal(key) if isinstance(key, (ast.Constant, ast.UnaryOp)) else None
            if not isinstance(step, (str, int)) or isinstance(step, bool):
                self.fail(key, "a field subscript must be a string key or an integer index")
            return self.path(node.value) + [step]
        self.fail(node, f"expected a field name, not {_describe(node)}")

    def operand(self, node: ast.AST) -> Callable[[Any], Any]:
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            steps = self.path(node)
            self.fields.add(steps[0])

            def field(record: Any) -> Any:
                value = record
                for step in steps:
                    value = _lookup(value, step)
                    if value is _MISSING:
                        return _MISSING
                return value
            return field
        value = self.literal(node)
        return lambda record: value

    def test(self, node: ast.AST) -> Callable[[Any], bool]:
        if isinstance(node, ast.BoolOp):
            parts = [self.test(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda record: all(part(record) for part in parts)
            return lambda record: any(part(record) for part in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.test(node.operand)
            return lambda record: not inner(record)
        if isinstance(node, ast.Compare):
            operands = [self.operand(node.left)] + [self.operand(c) for c in node.comparators]
            ops = []
            for op, right in zip(node.ops, node.comparators):
                if type(op) not in _COMPARE:
                    self.fail(right, f"the operator {type(op).__name__} is not in the language "
                                     f"(==, !=, <, <=, >, >=, in, not in)")
                ops.append(_COMPARE[type(op)])

            def compare(record: Any) -> bool:
                left = operands[0](record)
                for op, operand in zip(ops, operands[1:]):
                    right = operand(record)
                    try:
                        if not op(left, right):
                            return False
                    except TypeError:            # "PK" < 3, None < 5, a dict in a set
                        return False
                    left = right
                return True
            return compare
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Constant)):
            value = self.operand(node)
            return lambda record: bool(value(record))
        self.fail(node, f"{_describe(node)} is not in the language")


def _describe(node: ast.AST) -> str:
    names = {ast.Call: "a call", ast.Lambda: "a lambda", ast.BinOp: "arithmetic",
             ast.Dict: "a dict", ast.IfExp: "a conditional", ast.NamedExpr: "an assignment",
             ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
             ast.GeneratorExp: "a comprehension", ast.DictComp: "a comprehension",
             ast.JoinedStr: "an f-string", ast.Starred: "a starred expression"}
    return names.get(type(node), f"{type(node).__name__}")


def where(expression: str) -> Callable[[Any], bool]:
    """Compile a --where expression into a predicate over one record (a dict).

    Raises:
        TypeError: ``expression`` is not a str.
        WhereError: a syntax error, or anything outside the language (a ``ValueError``;
            the message gives the 1-based column and points at it).

    >>> where('country.iso_code == "PK"')({"country": {"iso_code": "PK"}})
    True
    """
    if not isinstance(expression, str):
        raise TypeError(f"a --where expression must be a str, not {type(expression).__name__}")
    if not expression.strip():
        raise WhereError(expression, 1, "empty expression")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise WhereError(expression.strip(), max(exc.offset or 1, 1), f"syntax error: {exc.msg}") from None
    compiler = _Compiler(expression.strip())
    predicate = compiler.test(tree.body)
    # Readers may decode only these fields of each record before asking (see mmdb.read).
    predicate.fields = frozenset(compiler.fields)           # type: ignore[attr-defined]
    return predicate
