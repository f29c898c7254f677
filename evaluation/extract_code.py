"""The code a model gave as its answer: one complete fenced block of its final answer, exactly as written.

Harnesses disagree here, and the disagreement moves scores: taking the first block grades a draft
or a usage example, joining blocks or injecting imports grades code the model never wrote. The rules
(each one is a case in tests/evaluation/extraction_cases.jsonl):

1. Only the final answer region counts (final_answer.py: harmony final channel first, text after
   `</think>`; unfinished reasoning is no answer). Code in the reasoning is never used.
2. Fences are ``` or ~~~ lines (three or more, optionally indented, with tabs too); a block closes at
   a fence line of the same character, at least as long, with no info string and indented at most
   three columns more than its opening fence (so a ``` inside an indented docstring does not close it).
3. An unterminated fence means the output was cut short: None (no_answer), never partial code, even
   when an earlier complete block exists (it is a draft the model was still replacing).
4. Candidate blocks: info string empty or a Python tag (`python`, `py`, `python3`, `py3`, `ipython`,
   any case). Blocks tagged with another language (bash, text, json, ...) are never the answer.
   A first content line that is only such a tag (the model wrote the tag on its own line) is dropped.
5. Of several candidates, the last one that defines the entry point at top level (def, class,
   assignment or import alias; found with `ast`, or by a `def name`/`class name` line when the block
   does not parse, so a syntax error is graded as one) wins; if none defines it, the last candidate.
6. No fence at all: the whole final answer is the code if it parses (`ast.parse`) and defines the
   entry point.
7. Lines keep their characters (tabs stay tabs); only the fence's own indentation is removed from
   every line (markdown semantics for a block inside a list item). Nothing is ever added.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Optional

from .final_answer import final_answer_region

PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", "ipython"})
_OPEN_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CLOSE_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*$")


@dataclass
class CodeBlock:
    """One fenced block: its info string's first word (lowercased) and its content."""

    tag: str
    code: str
    complete: bool


def _columns(indent: str) -> int:
    return len(indent.expandtabs(4))


def _dedent_by(lines: list[str], indent: str) -> list[str]:
    """Remove the opening fence's indentation from every line that carries it (markdown rule)."""
    if not indent:
        return lines
    out = []
    for line in lines:
        if line.startswith(indent):
            out.append(line[len(indent) :])
        elif not line.strip():
            out.append("")
        else:
            out.append(line)
    return out


def fenced_blocks(text: str) -> list[CodeBlock]:
    """Every fenced block of `text`, in order; an unterminated last block has complete=False."""
    lines = text.split("\n")
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        opening = _OPEN_FENCE.match(lines[i])
        if not opening or (opening.group("fence")[0] == "`" and "`" in opening.group("info")):
            i += 1
            continue
        fence, indent = opening.group("fence"), opening.group("indent")
        info = opening.group("info").strip()
        tag = info.split()[0].lower() if info else ""
        body: list[str] = []
        j, closed = i + 1, False
        while j < len(lines):
            closing = _CLOSE_FENCE.match(lines[j])
            if (
                closing
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and _columns(closing.group("indent")) <= _columns(indent) + 3
            ):
                closed = True
                break
            body.append(lines[j])
            j += 1
        body = _dedent_by(body, indent)
        blocks.append(CodeBlock(tag=tag, code="\n".join(body) + ("\n" if body else ""), complete=closed))
        i = j + 1
    return blocks


def _drop_tag_line(code: str) -> str:
    """`python` alone on the first content line is a misplaced language tag, not a statement."""
    lines = code.split("\n")
    first = next((k for k, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].strip().lower() in PYTHON_TAGS:
        return "\n".join(lines[first + 1 :])
    return code


def top_level_names(code: str) -> Optional[set[str]]:
    """Names a module binds at top level (defs, classes, assignments, imports); None if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def defines(code: str, entry_point: str) -> bool:
    """Whether `code` binds the entry point (its first dotted part: `Class.method` needs `Class`)."""
    name = entry_point.split(".")[0]
    names = top_level_names(code)
    if names is not None:
        return name in names
    return re.search(rf"^(?:async[ \t]+def|def|class)[ \t]+{re.escape(name)}\b", code, re.MULTILINE) is not None


def extract_code(generation: Optional[str], entry_point: Optional[str] = None) -> Optional[str]:
    """The answer's code exactly as written, or None (no answer, or output cut inside a block)."""
    region = final_answer_region(generation)
    if region is None:
        return None
    blocks = fenced_blocks(region)
    if any(not block.complete for block in blocks):
        return None
    candidates = [
        code for code in (_drop_tag_line(b.code) for b in blocks if b.tag in PYTHON_TAGS or not b.tag) if code.strip()
    ]
    if candidates:
        if entry_point:
            defining = [code for code in candidates if defines(code, entry_point)]
            if defining:
                return defining[-1]
        return candidates[-1]
    if not blocks and entry_point:
        code = region.strip("\n")
        if top_level_names(code) is not None and defines(code, entry_point):
            return code + "\n"
    return None
