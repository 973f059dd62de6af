"""Type checks of hand-written parameters (YAML) against a dataclass's field annotations.

A params file is typed by its author, so ``seed: "zero"`` or ``min_similarity: x`` arrives as a string
and would otherwise surface as a traceback deep inside numpy or HiGHS. :func:`check_fields` checks every
field annotated with a scalar type (``int``, ``float``, ``str``, ``bool``, optionally ``| None``) or a
``list`` / ``tuple`` of one, and raises a :class:`~crossmatch.errors.ConfigError` naming the key.
Other annotations (``Any``, ``Literal``, mappings, mixed unions) are left to the dataclass's own checks.

Two YAML quirks are accepted: an integer where a float is expected (kept as it is), and a float
written without a dot (``1e-4``, which YAML 1.1 reads as a string), converted to ``float``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union

from crossmatch.errors import ConfigError

_SCALARS = (bool, int, float, str)
_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_NAMES_PLURAL = {bool: "true / false values", int: "integers", float: "numbers", str: "strings"}


@dataclasses.dataclass(frozen=True)
class _Spec:
    kinds: tuple[type, ...]  # accepted scalar types
    optional: bool  # null allowed
    sequence: bool  # a list (or tuple) of such scalars

    def describe(self) -> str:
        text = " or ".join(_NAMES[k] for k in self.kinds)
        if self.sequence:
            text = "a list of " + " or ".join(_NAMES_PLURAL[k] for k in self.kinds)
        return text + (" (or null)" if self.optional else "")


def _spec(hint: Any) -> _Spec | None:
    """The check for one annotation, or ``None`` when it is not a (list of) scalar type(s)."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = typing.get_args(hint)
        rest = tuple(a for a in args if a is not type(None))
        optional = len(rest) < len(args)
        if len(rest) == 1:
            hint = rest[0]
        elif all(a in _SCALARS for a in rest):
            return _Spec(rest, optional, sequence=False)
        else:
            return None
    if hint in _SCALARS:
        return _Spec((hint,), optional, sequence=False)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list and len(args) == 1 and args[0] in _SCALARS:
        return _Spec((args[0],), optional, sequence=True)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS:
        return _Spec((args[0],), optional, sequence=True)
    return None


_REJECT = object()


def _scalar(value: Any, kinds: tuple[type, ...]) -> Any:
    """``value`` if it has one of ``kinds`` (a float-like string becomes a float), else ``_REJECT``."""
    kind = type(value)  # exact: bool is an int subclass, but ``window: true`` is not a window
    if kind in kinds:
        return value
    if float in kinds and kind is int:
        return value
    if float in kinds and kind is str:
        try:
            return float(value)
        except ValueError:
            return _REJECT
    return _REJECT


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_value(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against the annotation ``hint`` (see the module doc); ``key`` names it in errors."""
    spec = _spec(hint)
    if spec is None or (value is None and spec.optional):
        return value
    if spec.sequence:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be {spec.describe()}, got {_shown(value)}")
        items = [_scalar(v, spec.kinds) for v in value]
        bad = [i for i, v in enumerate(items) if v is _REJECT]
        if bad:
            raise ConfigError(f"{key}[{bad[0]}] must be {' or '.join(_NAMES[k] for k in spec.kinds)}, "
                              f"got {_shown(value[bad[0]])}")
        changed = any(a is not b for a, b in zip(items, value, strict=True))
        return type(value)(items) if changed else value
    checked = _scalar(value, spec.kinds)
    if checked is _REJECT:
        raise ConfigError(f"{key} must be {spec.describe()}, got {_shown(value)}")
    return checked


def check_fields(cls: type, values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``values`` (keyword arguments of the dataclass ``cls``) with each field checked by :func:`check_value`;
    keys that are not fields of ``cls`` pass through. Errors name the key as ``<prefix>.<field>``."""
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that cannot be resolved at run time: nothing to check
        return dict(values)
    return {k: check_value(v, hints[k], f"{prefix}.{k}") if k in hints else v for k, v in values.items()}


T = TypeVar("T")


def section_as(cls: type[T], section: dict[str, Any], key: str) -> T:
    """The dataclass ``cls`` built from a params mapping; an unknown key or a badly typed value is a
    :class:`ConfigError` naming ``<key>.<field>``."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"params.yaml: unknown key(s) {unknown} under '{key}'; known: {sorted(known)}")
    section = check_fields(cls, section, key)
    try:
        return cls(**section)
    except TypeError as exc:
        raise ConfigError(f"params.yaml: '{key}': {exc}") from None
