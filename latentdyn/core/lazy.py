"""Package faces that import their public names on first use (PEP 562).

``latentdyn`` and ``latentdyn.analysis`` name functions whose modules import torch, scikit-learn
or scipy (seconds); a command that only parses options, or generates scenes, should not pay for
them. ``lazy_exports`` gives a package the module-level ``__getattr__`` and ``__dir__`` that
import a name's home module when the name is first read, and keep the value for later reads.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, list[str]], namespace: dict[str, Any]) -> tuple[Callable, Callable]:
    """(``__getattr__``, ``__dir__``) for ``package``; ``exports`` maps a module to the names it provides."""
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name]), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(home))

    return __getattr__, __dir__
