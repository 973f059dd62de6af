"""Checkpoints that load without running code: tensors and plain Python types only.

A ``.pt`` file is a pickle, and a full unpickle can run any code the file names (a planted checkpoint
in a shared DVC cache would run on whoever loads it). :func:`load_checkpoint` therefore loads with
``torch.load(weights_only=True)``, which rebuilds only tensors, dtypes, devices and plain containers
and scalars, and turns a refusal into an :class:`~crossmatch.errors.InputError` naming the file and
the object it refused. The other half of the contract is at save time: a NumPy scalar, an array or a
dataclass in a checkpoint would make it unloadable that way, so :func:`save_checkpoint` checks the
object first and names the first value that is not plain (convert it: ``float(x)``, ``x.tolist()``,
``dataclasses.asdict(cfg)``).
"""

from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from crossmatch.errors import InputError

# exact types: np.float64 subclasses float but is pickled as a NumPy global, which the loader refuses
_SCALARS = frozenset({str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Size})
_MAPPINGS = frozenset({dict, OrderedDict})
_SEQUENCES = frozenset({list, tuple, set})
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise ``TypeError`` naming the first value of ``obj`` that is neither a tensor nor a plain type."""
    kind = type(obj)
    if isinstance(obj, torch.Tensor) or kind in _SCALARS:
        return
    if kind in _MAPPINGS:
        for key, value in obj.items():
            check_plain(key, f"{where} key {key!r}")
            check_plain(value, f"{where}[{key!r}]")
        return
    if kind in _SEQUENCES:
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(f"{where} is a {kind.__module__}.{kind.__qualname__}: a checkpoint holds only tensors and "
                    "plain Python types, so that it loads with weights_only=True; convert it before saving")


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save(obj, path)`` after :func:`check_plain` (callers pass a temporary path for atomicity).

    Saved through a file handle: given a path, torch names the records inside the zip after the file, so an
    atomic write's random temporary name made every save of one model a different file (and DVC re-ran
    everything downstream of it); through a handle the records are always ``archive/...``."""
    check_plain(obj)
    with open(path, "wb") as fh:
        torch.save(obj, fh)


def load_checkpoint(path: str | Path) -> Any:
    """Load a checkpoint onto the CPU without unpickling arbitrary objects.

    Raises:
        InputError: the file holds a pickled object other than tensors and plain types (it is refused
            and nothing in it runs), or it is not a torch checkpoint at all.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("checkpoint not found", file=str(p))
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _REFUSED_GLOBAL.search(str(exc))
        if found is None:  # e.g. a text file: no pickled object named, just not a checkpoint
            raise InputError("not a torch checkpoint (unreadable as tensors and plain types)", file=str(p)) from None
        raise InputError(f"refused to load: the checkpoint holds a pickled Python object ({found.group(1)}), "
                         "not only tensors and plain types, and unpickling it could run code", file=str(p)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:  # truncated zip, bad magic number, ...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(f"not a readable torch checkpoint ({type(exc).__name__}: {first})", file=str(p)) from None
