"""crossmatch: matching entities across data sources that share no ids.

Task-level API (keyword-only; :mod:`crossmatch.api`): :func:`resolve` matches the records of two tables,
:func:`solve` computes a stable matching of a two-sided market. They load on first use, so ``import
crossmatch`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Resolution", "resolve", "solve"]

if TYPE_CHECKING:
    from crossmatch.api import Resolution, resolve, solve


def __getattr__(name: str) -> Any:
    if name in __all__:
        from crossmatch import api

        return getattr(api, name)
    raise AttributeError(f"module 'crossmatch' has no attribute {name!r}")
