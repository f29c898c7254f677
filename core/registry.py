"""Named implementations of one kind (executors, server types, graders, benchmarks), one module each.

A kind lives in one package; each module of that package registers what it implements:

    # inference/servers/trtllm.py
    from . import SERVER_TYPES, ServerType

    @SERVER_TYPES.register("trtllm")
    class TrtllmServer(ServerType): ...

The registry imports every module of its package the first time a name is looked up, so adding an
implementation is adding one file. An unknown name is an `UnknownNameError` that lists the known ones.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from .suggest import UnknownNameError

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """The implementations of one kind, found in `package` (modules whose name starts with `_` are skipped)."""

    def __init__(self, kind: str, package: str, how_to_add: str = "", packages_only: bool = False):
        self.kind = kind
        self.package = package
        self.how_to_add = how_to_add
        self.packages_only = packages_only
        """Only subpackages (folders) hold implementations, as benchmarks do; plain modules are helpers."""
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: one instance of the class is registered under `name`."""

        def add(cls: C) -> C:
            self.add(name, cls())
            return cls

        return add

    def add(self, name: str, item: T) -> None:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"two {self.kind}s are registered as '{name}'")
        self._items[name] = item

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_") and (module.ispkg or not self.packages_only):
                importlib.import_module(f"{self.package}.{module.name}")

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise UnknownNameError(self.kind, name, self._items, self.how_to_add)
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
