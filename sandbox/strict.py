"""Strict, type-aware assertions for graded tests: an answer's objects cannot claim to be right.

`assert add(2, 3) == 5` passes in plain Python when `add` returns an object whose `__eq__` always
says True. The tests of a graded task are rewritten (rewrite.py) so that every assertion goes
through a `Checker`, which only lets trusted code decide:

- A type is trusted when it existed before the answer was loaded: built-in types, the types of the
  preloaded libraries (torch, numpy) and of everything the tests imported. The answer cannot
  change them either: the grading sentry refuses attribute assignment on them.
- `==` and `!=` on built-in data (numbers, strings, bytes, None, lists, tuples, dicts, sets) compare
  structurally, element by element, with the same rule at every level. Other trusted types compare
  with their own `__eq__`, looked up on the type; the result must be a real boolean (or a
  one-element trusted tensor or array).
- An object of a type the answer defined is only ever compared with an object of that same type,
  with that type's `__eq__`, and the result must be exactly `True` or `False`: tests that check the
  answer's own equality still work, and an answer's object never equals `5`.
- The truth of an assertion (`assert x`) must come from a trusted type.
- Arguments and receivers of calls inside the tests may not be tensor subclasses or objects with
  dispatch hooks (`__torch_function__`, `__array_function__`, ...) that the answer defined, and no
  torch function or dispatch mode may be active: those would let the answer answer for torch.

Standalone (no assay imports): it runs inside the grading process.
"""

from __future__ import annotations

import operator

# Annotations only: typing is never imported at run time, so loading this module into the fork server
# adds no module (and so no trusted type, see harness.prepare) to what the grading process starts with.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_PLAIN = (bool, int, float, complex, str, bytes, type(None))
_SEQUENCES = (list, tuple)
_DISPATCH_HOOKS = ("__torch_function__", "__torch_dispatch__", "__array_function__", "__array_ufunc__")
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Checker:
    """The assertion functions the rewritten tests call (through a fast local, see rewrite.py)."""

    __slots__ = ("_trusted", "_fail_type", "_torch_modes", "_bool_types", "_tensor_type", "_array_types")

    def __init__(
        self,
        trusted_type_ids: set[int],
        assertion_error: type,
        torch_modes=None,
        bool_types: tuple = (),
        tensor_type=None,
        array_types: tuple = (),
    ):
        self._trusted = trusted_type_ids
        self._fail_type = assertion_error
        self._torch_modes = torch_modes  # () -> number of active torch function/dispatch modes
        self._bool_types = bool_types  # numpy.bool_ and such: trusted booleans
        self._tensor_type = tensor_type
        self._array_types = array_types

    # -- what the rewritten tests call ---------------------------------------------------------

    def fail(self, message=None) -> NoReturn:
        if message is None:
            raise self._fail_type()
        raise self._fail_type(message if type(message) is str else "<assertion message of an untrusted type>")

    def t(self, value) -> bool:
        """The truth of `value`, decided by a trusted type."""
        kind = type(value)
        if kind is bool:
            return value
        if id(kind) not in self._trusted:
            self.fail(f"the truth of an object of type {_name(kind)} (defined by the answer) is not a test outcome")
        return bool(value)

    def c(self, op: str, left, right) -> bool:
        """One comparison of an assertion."""
        if op == "is":
            return left is right
        if op == "is not":
            return left is not right
        if op == "==":
            return self.eq(left, right)
        if op == "!=":
            return not self.eq(left, right)
        if op in ("in", "not in"):
            found = self._contains(right, left)
            return found if op == "in" else not found
        self._deep_trusted(left)
        self._deep_trusted(right)
        return self.t(_ORDER[op](left, right))

    def arg(self, value):
        """A value passed to a call in the tests, checked for dispatch tricks."""
        kind = type(value)
        if id(kind) in self._trusted:
            if (
                self._torch_modes is not None
                and self._tensor_type is not None
                and isinstance(value, self._tensor_type)
                and self._torch_modes()
            ):
                self.fail("a torch function or dispatch mode is active: the answer installed it")
            return value
        for hook in _DISPATCH_HOOKS:
            if getattr(kind, hook, None) is not None and not self._inherited_trusted(kind, hook):
                self.fail(f"an object of type {_name(kind)} (defined by the answer) overrides {hook}")
        if self._tensor_type is not None and isinstance(value, self._tensor_type):
            self.fail(f"a tensor subclass defined by the answer ({_name(kind)}) reached the tests")
        return value

    # -- equality ------------------------------------------------------------------------------

    def eq(self, a, b, depth: int = 0) -> bool:
        if depth > 200:
            self.fail("values nested too deeply to compare")
        ta, tb = type(a), type(b)
        trusted_a, trusted_b = id(ta) in self._trusted, id(tb) in self._trusted
        if not (trusted_a and trusted_b):
            if ta is tb:
                result = ta.__eq__(a, b)  # type: ignore[call-arg]  # taken from the type, __eq__ is unbound (mypy binds it)
                if type(result) is not bool:
                    self.fail(f"{_name(ta)}.__eq__ (defined by the answer) returned {_name(type(result))}, not a bool")
                return result
            untrusted = ta if not trusted_a else tb
            self.fail(f"comparison with an object of type {_name(untrusted)}, defined by the answer")
        if ta in _PLAIN and tb in _PLAIN:
            return a == b
        if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            if isinstance(a, list) != isinstance(b, list):
                return False
            if len(a) != len(b):
                return False
            return all(self.eq(x, y, depth + 1) for x, y in zip(a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            if len(a) != len(b):
                return False
            for key in a:
                self._deep_trusted(key)
            for key in b:
                self._deep_trusted(key)
            if a.keys() != b.keys():
                return False
            return all(self.eq(a[k], b[k], depth + 1) for k in a)
        if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
            self._deep_trusted(a)
            self._deep_trusted(b)
            return a == b
        if isinstance(a, (_SEQUENCES, dict, set, frozenset)) or isinstance(b, (_SEQUENCES, dict, set, frozenset)):
            # a container against another trusted type (a tensor, an array): elements must be trusted
            self._deep_trusted(a)
            self._deep_trusted(b)
        result = ta.__eq__(a, b)  # type: ignore[call-arg]  # taken from the type, __eq__ is unbound (mypy binds it)
        if result is NotImplemented:
            result = tb.__eq__(b, a)  # type: ignore[call-arg]  # taken from the type, __eq__ is unbound (mypy binds it)
        if result is NotImplemented:
            return a is b
        return self._boolean(result)

    def _boolean(self, result) -> bool:
        kind = type(result)
        if kind is bool:
            return result
        if kind in self._bool_types:
            return bool(result)
        if id(kind) in self._trusted and (kind is self._tensor_type or kind in self._array_types):
            return bool(result)  # a one-element tensor or array; more elements raise, as in plain Python
        self.fail(f"a comparison gave {_name(kind)}, not a boolean")

    def _contains(self, container, item) -> bool:
        kind = type(container)
        if id(kind) not in self._trusted:
            self.fail(f"membership in an object of type {_name(kind)}, defined by the answer")
        if isinstance(container, (str, bytes)):
            if type(item) not in (str, bytes):
                self._deep_trusted(item)
            return item in container
        if isinstance(container, _SEQUENCES):
            return any(self.eq(item, element) for element in container)
        if isinstance(container, (dict, set, frozenset)):
            self._deep_trusted(item)
            return item in container
        self._deep_trusted(item)
        return self.t(kind.__contains__(container, item))

    def _deep_trusted(self, value, depth: int = 0) -> None:
        kind = type(value)
        if id(kind) not in self._trusted:
            self.fail(f"an object of type {_name(kind)}, defined by the answer, in a comparison")
        if depth > 200:
            self.fail("values nested too deeply to compare")
        if isinstance(value, (list, tuple, set, frozenset)):
            for element in value:
                self._deep_trusted(element, depth + 1)
        elif isinstance(value, dict):
            for key, element in value.items():
                self._deep_trusted(key, depth + 1)
                self._deep_trusted(element, depth + 1)

    def _inherited_trusted(self, kind: type, hook: str) -> bool:
        """Whether `kind` gets `hook` unchanged from a trusted base (an nn.Module subclass, say)."""
        for base in kind.__mro__:
            if hook in base.__dict__:
                return id(base) in self._trusted
        return True


def _name(kind: type) -> str:
    try:
        name = type.__dict__["__qualname__"].__get__(kind)
    except (KeyError, TypeError, AttributeError):
        name = "?"
    return name if type(name) is str else "?"
