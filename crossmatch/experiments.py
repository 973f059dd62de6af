"""A comparison of DVC experiments that fits on a screen (issue 14 §3, "readable comparisons").

``dvc exp show`` prints one column per tracked param, metric and dependency hash (hundreds here) and has no
setting that hides them by default. This module reads the records of ``dvc exp show --json`` and keeps what a
person compares: the params whose values differ between the rows shown, and the headline metrics. It is
transposed (one row per param or metric, one column per experiment) because a sweep has a handful of
experiments but ~25 headline figures. Pure: the caller runs DVC and prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crossmatch.errors import CrossmatchError

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Experiment:
    """One row of ``dvc exp show``: the workspace, a commit, or an experiment derived from a commit."""

    label: str
    rev: str
    params: dict[str, Scalar] = field(default_factory=dict)
    metrics: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Columns (experiment labels) and two sections of rows: changed params, then metrics per file."""

    columns: list[str]
    params: list[tuple[str, list[Scalar]]]
    metrics: list[tuple[str, list[tuple[str, list[Scalar]]]]]
    errors: list[tuple[str, str]]
    unchanged_params: int
    missing_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiments": self.columns,
            "params_changed": {k: v for k, v in self.params},
            "unchanged_params": self.unchanged_params,
            "metrics": {f: {k: v for k, v in rows} for f, rows in self.metrics},
            "errors": {label: msg for label, msg in self.errors},
            "missing_metrics_files": self.missing_files,
        }


def _flatten(data: Any, prefix: str = "") -> dict[str, Scalar]:
    # not crossmatch.icpa.report.flatten: importing the icpa package loads torch (~7 s) for a 4-second command
    if isinstance(data, Mapping):
        out: dict[str, Scalar] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list):
        # lists (sources, grids) are compared as a whole: one row, not one per element
        return {prefix: ", ".join(str(x) for x in data)}
    return {prefix: data}


def _record(rec: Mapping[str, Any], label: str) -> Experiment:
    data = rec.get("data") or {}
    err = rec.get("error")
    params: dict[str, Scalar] = {}
    for path, entry in (data.get("params") or {}).items():
        # params.yaml keys are shown bare (as `dvc exp show` does); another file's keys carry its path
        prefix = "" if path == "params.yaml" else f"{path}:"
        for k, v in _flatten((entry or {}).get("data") or {}).items():
            params[prefix + k] = v
    metrics = {path: _flatten((entry or {}).get("data") or {}) for path, entry in (data.get("metrics") or {}).items()}
    message = None
    if err:
        message = str(err.get("msg", err)) if isinstance(err, Mapping) else str(err)
    return Experiment(label=label, rev=str(rec.get("rev", "")), params=params, metrics=metrics, error=message)


def experiments_from_json(records: Sequence[Mapping[str, Any]]) -> list[Experiment]:
    """The rows of ``dvc exp show --json`` (DVC 3: workspace, commits, each with nested experiments) in the
    order DVC prints them."""
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise CrossmatchError("`dvc exp show --json` did not return a list of records")
    out: list[Experiment] = []
    for rec in records:
        if not isinstance(rec, Mapping):
            raise CrossmatchError("`dvc exp show --json`: a record is not an object")
        rev = str(rec.get("rev", ""))
        name = rec.get("name")
        label = "workspace" if rev == "workspace" else f"{name} ({rev[:7]})" if name else rev[:7]
        out.append(_record(rec, label))
        for group in rec.get("experiments") or []:
            state = (group.get("executor") or {}).get("state")
            for sub in group.get("revs") or []:
                sub_name = str(sub.get("name") or group.get("name") or str(sub.get("rev", ""))[:7])
                # a queued, running or failed experiment says so: its metrics are missing or partial
                out.append(_record(sub, f"{sub_name} ({state})" if state and state != "success" else sub_name))
    return out


def _differ(values: Iterable[Scalar]) -> bool:
    seen = list(values)
    return any(v != seen[0] for v in seen[1:])


def compare(experiments: Sequence[Experiment], *, metric_files: Sequence[str] | None = None,
            only_changed_metrics: bool = False) -> Comparison:
    """The params that differ between ``experiments`` and their metrics, one row each.

    ``metric_files`` keeps those metrics files only (paths as DVC names them); ``only_changed_metrics`` drops
    metric rows equal in every experiment. A key missing from an experiment is ``None`` there (and counts as a
    difference). A workspace equal to the commit below it is shown once, as that commit.
    """
    if not experiments:
        raise CrossmatchError("no experiments to compare (is this a DVC repository with a commit?)")
    ok = [e for e in experiments if e.error is None]
    if len(ok) > 1 and ok[0].rev == "workspace" and (ok[0].params, ok[0].metrics) == (ok[1].params, ok[1].metrics):
        # a clean workspace repeats the commit below it: one column instead of two
        ok = ok[1:]
    keys = sorted({k for e in ok for k in e.params})
    changed = [(k, [e.params.get(k) for e in ok]) for k in keys]
    params = [(k, v) for k, v in changed if _differ(v)]
    files = sorted({f for e in ok for f in e.metrics})
    missing: list[str] = []
    if metric_files is not None:
        missing = [f for f in metric_files if f not in files]  # e.g. before the stage that writes it has run
        files = [f for f in files if f in metric_files]
    sections: list[tuple[str, list[tuple[str, list[Scalar]]]]] = []
    for f in files:
        mkeys = sorted({k for e in ok for k in e.metrics.get(f, {})})
        rows = [(k, [e.metrics.get(f, {}).get(k) for e in ok]) for k in mkeys]
        if only_changed_metrics:
            rows = [(k, v) for k, v in rows if _differ(v)]
        sections.append((f, rows))
    return Comparison(columns=[e.label for e in ok], params=params, metrics=sections,
                      errors=[(e.label, e.error) for e in experiments if e.error is not None],
                      unchanged_params=len(keys) - len(params), missing_files=missing)


def cell(value: Scalar, digits: int = 4) -> str:
    """A value as the comparison prints it: floats to ``digits`` decimals, missing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
