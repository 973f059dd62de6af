"""What every stage shares: typed params, atomic writes, clean error exits, progress.

Stages never import Prefect; they read their own section of ``params.yaml`` and write
outputs atomically (temporary sibling, then ``os.replace``), so a failing stage leaves no
half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.markup import escape

from crossmatch.errors import ConfigError, CrossmatchError, shorten
from crossmatch.params import section_as

console = Console(stderr=True)
T = TypeVar("T")
MAX_MESSAGE = 500  # characters of a stage's error line (issue 15: short, whatever the input)


def load_section(stage: str, path: str | Path = "params.yaml") -> dict[str, Any]:
    """The ``stage`` section of a params file (an empty mapping when absent)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"params file not found: {p}")
    try:
        with p.open() as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    section = data.get(stage, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{p}: '{stage}' must be a mapping of parameters")
    return section


def params_as(cls: type[T], section: dict[str, Any], stage: str) -> T:
    """Build the dataclass ``cls`` from a params section (:func:`crossmatch.params.section_as`): unknown
    keys and values of the wrong type are an error naming ``<stage>.<key>``."""
    return section_as(cls, section, stage)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(path: Path, mode: int) -> None:
    """Give a finished temp file/dir the permissions a plain ``open``/``mkdir`` would have:
    mkstemp/mkdtemp create them owner-only (0600/0700), which would hide outputs from a team."""
    os.chmod(path, mode & ~_umask())


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def write_atomic(path: str | Path, writer: Callable[[Path], object]) -> None:
    """Call ``writer(tmp)`` then rename ``tmp`` over ``path`` (what ``writer`` returns is ignored)."""
    target = Path(path)
    tmp = _tmp_sibling(target, target.suffix)
    try:
        writer(tmp)
        _public(tmp, 0o666)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def is_timing_key(key: str) -> bool:
    """A wall-clock key: ``seconds``, ``*_seconds``, or a flat dotted/slashed key whose last part is one."""
    last = key.replace("/", ".").rsplit(".", 1)[-1]
    return last == "seconds" or last.endswith("_seconds")


def split_timings(obj: Any) -> tuple[Any, dict[str, Any]]:
    """``(obj without its timing keys, the timing keys with their paths)``; nested mappings keep their shape."""
    if not isinstance(obj, dict):
        return obj, {}
    kept: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(key, str) and is_timing_key(key):
            timings[key] = value
            continue
        inner, inner_timings = split_timings(value)
        kept[key] = inner
        if inner_timings:
            timings[key] = inner_timings
    return kept, timings


def timings_path(path: str | Path) -> Path:
    """Where the timings of the JSON file ``path`` go: ``timings/<name>`` beside its ``metrics/`` folder
    (the repository root for ``metrics/*.json``), else a ``timings/`` folder beside the file."""
    p = Path(path)
    base = p.parent.parent if p.parent.name == "metrics" else p.parent
    return base / "timings" / p.name


def write_json(path: str | Path, obj: Any, *, split: bool = True) -> None:
    """Write ``obj`` as sorted, indented JSON. Wall-clock values (:func:`is_timing_key`) differ on every run,
    so unless ``split`` is false they go to :func:`timings_path` (git-ignored, no DVC output) and ``path``
    holds only what a re-run with the same inputs reproduces byte for byte."""
    timings: dict[str, Any] = {}
    if split:
        obj, timings = split_timings(obj)
        tpath = timings_path(path)
        if timings:
            tpath.parent.mkdir(parents=True, exist_ok=True)
            _write_json(tpath, timings)
        elif tpath.exists():
            tpath.unlink()  # no timings in this run: a stale file would describe an earlier one
    _write_json(path, obj)


def _write_json(path: str | Path, obj: Any) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"))


def write_text(path: str | Path, text: str) -> None:
    write_atomic(path, lambda p: p.write_text(text))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _public(tmp, 0o777)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def run(stage: str, main: Callable[[], None]) -> None:
    """Run a stage's ``main``; bad input or config ends with a one-paragraph message and exit 2."""
    try:
        main()
    except CrossmatchError as exc:
        # A last cap on the printed line (InputError caps its parts; a ConfigError may list many known keys).
        text = shorten(str(exc), MAX_MESSAGE - len(stage) - len(": error: "))
        console.print(f"[bold red]{stage}: error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print(f"[yellow]{stage}: interrupted[/]")
        sys.exit(130)
