"""A module loaded at its first use, so that the command line starts without the ORM."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module named `name`; imports it when an attribute is first asked for.

    Nothing is put in sys.modules ahead of time: other modules importing it get the real
    one, and importing stays under Python's import lock (safe from threads)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
