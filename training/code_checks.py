"""Checks on code targets of SFT data: only the code, code that parses, code that runs on its own.

SFT teaches the model to produce exactly its targets. Prose around the code teaches it to talk when
a harness wants a code block; code that does not parse or that uses a name it never imports teaches
it the failures the graders count (`syntax_error`, `NameError` for a missing `import torch`). These
checks are cheap and static; running the code in the sandbox is an optional, slower check
(prepare_data.py).
"""

from __future__ import annotations

import ast
import builtins
import symtable
from typing import Optional

from ..evaluation.extract_code import extract_code

MODULE_NAMES = frozenset(
    {
        "__name__",
        "__file__",
        "__doc__",
        "__builtins__",
        "__spec__",
        "__loader__",
        "__package__",
        "__annotations__",
        "__cached__",
        "__path__",
        "__class__",
    }
)
"""Names every module (or method, for `__class__`) has without defining them."""

BUILTIN_NAMES = frozenset(dir(builtins)) | MODULE_NAMES


def code_only(response: str, entry_point: Optional[str] = None) -> Optional[str]:
    """The answer's code without the text around it, by the same rules the code grader uses; None when absent.

    The grader's extractor is reused on purpose: the code kept for training is the code a grader
    would run from that same answer (the final answer's block that defines the entry point).
    """
    code = extract_code(response, entry_point)
    return code if code and code.strip() else None


def as_code_block(code: str, language: str = "python") -> str:
    """The target the model should write: one fenced block, the format the mlcode prompts ask for."""
    return f"```{language}\n{code.rstrip()}\n```"


def syntax_error(code: str) -> Optional[str]:
    """None when the code parses, else a one-line description."""
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes; nesting too deep to parse
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


def _has_star_import(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))


def _module_bound(top: symtable.SymbolTable) -> set[str]:
    """Names bound at module level, including by `global x; x = ...` inside functions."""
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    stack = list(top.get_children())
    while stack:
        table = stack.pop()
        bound |= {s.get_name() for s in table.get_symbols() if s.is_declared_global() and s.is_assigned()}
        stack.extend(table.get_children())
    return bound


def undefined_names(code: str) -> Optional[list[str]]:
    """Names the code uses but never defines, imports, or gets from builtins (sorted); None when it cannot say.

    Scope-aware through `symtable`: a name a function reads from the module must be bound at module
    level (a parameter of another function does not count), a method cannot see its class's
    attributes without `self.`. It does not follow control flow (a name bound in one branch counts
    as bound), and it gives up (None) on `from m import *`, whose names it cannot know.
    """
    try:
        tree = ast.parse(code)
        top = symtable.symtable(code, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if _has_star_import(tree):
        return None
    bound = _module_bound(top) | BUILTIN_NAMES
    missing: set[str] = set()
    stack = [top]
    while stack:
        table = stack.pop()
        for sym in table.get_symbols():
            if not sym.is_referenced():
                continue
            reads_module = table is top or sym.is_global()
            if reads_module and sym.get_name() not in bound:
                missing.add(sym.get_name())
        stack.extend(table.get_children())
    return sorted(missing)
