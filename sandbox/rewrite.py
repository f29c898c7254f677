"""Rewrite a graded task's tests so that their assertions and calls go through the strict Checker.

- `assert <test>, <msg>` becomes `if not <test'>: CHECK.fail(<msg>)`, where in `<test'>` every
  comparison is `CHECK.c(op, left, right)` (chains keep Python's single evaluation and
  short-circuit, through walrus temporaries), every operand of `and`/`or`/`not` and the test itself
  go through `CHECK.t(...)`.
- every call `f(a, k=b)` becomes `f(CHECK.arg(a), k=CHECK.arg(b))`, and `obj.m(...)` checks `obj`.
- every function of the tests gets one more parameter, `__assay_check__=__assay_check__` (keyword-only when the function
  takes `*args`), so inside it the checker is a local bound when the function was defined, before
  the answer existed. An answer that rebinds the name in the tests' namespace changes nothing: the
  functions never read it from there.

Standalone (no assay imports): it runs inside the grading process.
"""

from __future__ import annotations

import ast

CHECK = "__assay_check__"  # a dunder name: never mangled inside class bodies
_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def _check_call(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(
        func=ast.Attribute(value=ast.Name(CHECK, ast.Load()), attr=method, ctx=ast.Load()), args=list(args), keywords=[]
    )


class _Rewriter(ast.NodeTransformer):
    def __init__(self):
        self._temp = 0

    def _temp_name(self) -> str:
        self._temp += 1
        return f"__assay_t{self._temp}__"

    # -- functions: bind the checker at definition time -------------------------------------------

    def _bind(self, node):
        self.generic_visit(node)
        args = node.args
        names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        if CHECK in names:
            return node
        if args.vararg is None:
            args.args.append(ast.arg(arg=CHECK))
            args.defaults.append(ast.Name(CHECK, ast.Load()))
        else:
            args.kwonlyargs.append(ast.arg(arg=CHECK))
            args.kw_defaults.append(ast.Name(CHECK, ast.Load()))
        return node

    visit_FunctionDef = _bind
    visit_AsyncFunctionDef = _bind

    def visit_Lambda(self, node):
        return self._bind(node)

    # -- calls ------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            node.func.value = _check_call("arg", node.func.value)
        node.args = [a if isinstance(a, ast.Starred) else _check_call("arg", a) for a in node.args]
        for keyword in node.keywords:
            if keyword.arg is not None:
                keyword.value = _check_call("arg", keyword.value)
        return node

    # -- assertions ---------------------------------------------------------------------------

    def _truth(self, node: ast.expr) -> ast.expr:
        """`node` as a real boolean decided by the checker."""
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(op=node.op, values=[self._truth(v) for v in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ast.UnaryOp(op=ast.Not(), operand=self._truth(node.operand))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        return _check_call("t", node)

    def _compare(self, node: ast.Compare) -> ast.expr:
        parts: list[ast.expr] = []
        left = node.left
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            last = i == len(node.ops) - 1
            if not last:  # the right side is also the next left side: evaluate it once
                name = self._temp_name()
                right_value = ast.NamedExpr(target=ast.Name(name, ast.Store()), value=right)
                parts.append(_check_call("c", ast.Constant(_OPS[type(op)]), left, right_value))
                left = ast.Name(name, ast.Load())
            else:
                parts.append(_check_call("c", ast.Constant(_OPS[type(op)]), left, right))
        return parts[0] if len(parts) == 1 else ast.BoolOp(op=ast.And(), values=parts)

    def visit_Assert(self, node: ast.Assert):
        self.generic_visit(node)
        message = [node.msg] if node.msg is not None else []
        failure = ast.Expr(_check_call("fail", *message))
        return ast.If(test=ast.UnaryOp(op=ast.Not(), operand=self._truth(node.test)), body=[failure], orelse=[])


def rewrite_tests(source: str, filename: str = "tests.py"):
    """The tests' code object, rewritten; SyntaxError (and friends) propagate to the caller."""
    tree = ast.parse(source, filename)
    tree = _Rewriter().visit(tree)
    ast.fix_missing_locations(tree)
    return compile(tree, filename, "exec")
