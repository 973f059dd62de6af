"""The WeaveNet paper's Tables 2–3 protocol (§3.7, §4.3): every algorithm and WeaveNet on fresh instances.

:func:`solve_cells` runs the classical algorithms (a process pool) and WeaveNet on ``instances`` fresh test
instances per cell (N × distribution); :func:`summarise` turns per-instance results into flat metrics (means,
standard errors, stable rates, win / tie / loss against the best algorithm of each column, repair effects)
and :func:`markdown` lays them out like the paper's tables. Pure: the ``weavenet_eval`` stage does the I/O.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from crossmatch.twosided.evaluation import CheckRow, mean_se, weavenet_outcomes, win_tie_loss
from crossmatch.twosided.generators import DISTRIBUTIONS, generate, split_rng
from crossmatch.twosided.instance import ranks_from_satisfaction
from crossmatch.twosided.solvers import ALGORITHMS, solve_batch
from crossmatch.twosided.weavenet.binarize import Binarize, binarize
from crossmatch.twosided.weavenet.checkpoints import ANY, members, model_for
from crossmatch.twosided.weavenet.model import WeaveNet
from crossmatch.twosided.weavenet.portfolio import keep_best
from crossmatch.twosided.weavenet.train import outcome, predict_logits

WN = "WeaveNet"
WN_REP = "WeaveNet+repair"
WN_SET = "WeaveNet best-of-set"


@dataclass(frozen=True)
class TablesSpec:
    """What a Tables 2–3 run covers (§3.7, §4.3): cells = ``sizes`` × ``distributions``, ``instances`` fresh
    test instances per cell (seeded per cell from ``seed``), the classical ``algorithms``, the WeaveNet
    ``binarize`` method, and a process pool of ``workers`` over chunks of ``chunk`` instances. ``portfolio``:
    also every model of a set on every cell, keeping per instance the stable output with the lowest SEq
    (:mod:`~crossmatch.twosided.weavenet.portfolio`), reported beside the cell's own model."""

    distributions: list[str] = field(default_factory=lambda: list(DISTRIBUTIONS))
    sizes: list[int] = field(default_factory=lambda: [20, 30])
    instances: int = 1000
    seed: int = 2456  # the paper's test seed, fed to our per-cell SeedSequence
    algorithms: list[str] = field(default_factory=lambda: list(ALGORITHMS))
    binarize: Binarize = "argmax"  # a Literal once __post_init__ has checked the YAML string
    workers: int = 2
    chunk: int = 100
    check_sigmas: float = 3.0
    portfolio: bool = False

    def __post_init__(self) -> None:
        bad = [d for d in self.distributions if d not in DISTRIBUTIONS]
        if bad or not self.distributions:
            raise ValueError(f"distributions must be a non-empty subset of {list(DISTRIBUTIONS)}, got {bad}")
        bad_a = [a for a in self.algorithms if a not in ALGORITHMS]
        if bad_a or not self.algorithms:
            raise ValueError(f"algorithms must be a non-empty subset of {list(ALGORITHMS)}, got {bad_a}")
        if not self.sizes or min(self.sizes) < 2:
            raise ValueError(f"sizes must be integers >= 2, got {self.sizes}")
        if self.instances < 2 or self.workers < 1 or self.chunk < 1:
            raise ValueError("instances >= 2, workers >= 1 and chunk >= 1 are required")
        if self.binarize not in ("argmax", "hungarian"):
            raise ValueError(f"binarize must be argmax | hungarian, got {self.binarize!r}")


def _solve_chunk(ra: np.ndarray, rb: np.ndarray, algorithms: tuple[str, ...]) -> dict[str, np.ndarray]:
    return solve_batch(ra, rb, algorithms)


def solve_cells(params: TablesSpec, models: Mapping[str, WeaveNet] | None, device: torch.device,
                on_progress: Callable[[int, int], None] | None = None) -> dict[tuple[int, str], dict[str, np.ndarray]]:
    """Run the algorithms (process pool) and WeaveNet (this process, one model per distribution, or per
    distribution and size, via :func:`~crossmatch.twosided.weavenet.checkpoints.model_for`) on every cell; ``on_progress(done, total)``
    after each unit of work. Per cell ``(N, dist)``: per-instance arrays keyed ``<alg>/<target>/<cost>`` and ``WeaveNet/<key>``."""
    cells = [(n, d) for n in params.sizes for d in params.distributions]
    data: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for n, d in cells:
        data[(n, d)] = generate(d, n, params.instances, split_rng(params.seed, "test", d, n))
    results: dict[tuple[int, str], dict[str, np.ndarray]] = {c: {} for c in cells}
    algs = tuple(params.algorithms)
    jobs = []
    for c in cells:
        sa, sb = data[c]
        ra = (ranks_from_satisfaction(sa) - 1).astype(np.int16)
        rb = (ranks_from_satisfaction(sb) - 1).astype(np.int16)
        for k in range(0, params.instances, params.chunk):
            jobs.append((c, k, ra[k:k + params.chunk], rb[k:k + params.chunk]))
    parts: dict[tuple[tuple[int, str], int], dict[str, np.ndarray]] = {}
    total, done = len(jobs) + len(cells), 0

    def advance() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    pool = ProcessPoolExecutor(params.workers) if params.workers > 1 else None
    try:
        futures = [(c, k, pool.submit(_solve_chunk, ra, rb, algs)) if pool else (c, k, None) for c, k, ra, rb in jobs]
        # WeaveNet runs in this process while the pool works on the algorithms.
        for c in cells:
            if models is not None:
                sa, sb = data[c]
                logits = predict_logits(model_for(models, c[1], c[0]), sa, sb, device)
                match = binarize(logits, params.binarize)
                for key, val in weavenet_outcomes(sa, sb, logits, match).items():
                    results[c][f"{WN}/{key}"] = val
                # The other binarisation too: both stable rates are reported (§3.7 steps 1-2).
                other: Binarize = "argmax" if params.binarize == "hungarian" else "hungarian"
                results[c][f"{WN}/{other}_stable"] = outcome(sa, sb, binarize(logits, other))["stable"]
                if params.portfolio and len({id(m) for m in models.values()}) > 1:
                    own = model_for(models, c[1], c[0])  # its output is `match`, first: it wins ties
                    others = [binarize(predict_logits(m, sa, sb, device), params.binarize)
                              for m in models.values() if m is not own]
                    best, chosen = keep_best(sa, sb, [match, *others])
                    o = outcome(sa, sb, best)
                    for key in ("stable", "seq", "egal"):
                        results[c][f"{WN_SET}/{key}"] = o[key]
                    results[c][f"{WN_SET}/own"] = chosen == 0
            advance()
        for (c, k, fut), (_, _, ra, rb) in zip(futures, jobs, strict=True):
            parts[(c, k)] = fut.result() if fut is not None else _solve_chunk(ra, rb, algs)
            advance()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    for c in cells:
        keys = sorted({kk for (cc, _), p in parts.items() if cc == c for kk in p})
        for kk in keys:
            results[c][kk] = np.concatenate([parts[(c, k)][kk] for k in range(0, params.instances, params.chunk)])
    return results


def summarise(params: TablesSpec, results: dict[tuple[int, str], dict[str, np.ndarray]], has_model: bool) -> tuple[dict[str, Any], dict[tuple[str, str, int, str], tuple[float, float, int]], list[dict[str, Any]]]:
    """Flat metrics, the (metric, method, N, dist) → (mean, sd, n) map of the external check, and CSV rows."""
    metrics: dict[str, Any] = {}
    ours: dict[tuple[str, str, int, str], tuple[float, float, int]] = {}
    rows: list[dict[str, Any]] = []
    label = {"seq": "SEq", "bal": "Bal"}
    for (n, d), r in results.items():
        cell = f"N{n}/{d}"
        for target in ("seq", "bal"):
            best_alg, best_mean = None, math.inf
            for a in params.algorithms:
                m, sd, se = mean_se(r[f"{a}/{target}/{target}"])
                egal = float(r[f"{a}/{target}/egal"].mean())
                stable = float((r[f"{a}/{target}/blocking"] == 0).mean())
                metrics[f"{label[target]}/{cell}/{a}"] = m
                metrics[f"{label[target]}/{cell}/{a}/se"] = se
                metrics[f"{label[target]}/{cell}/{a}/egal"] = egal
                metrics[f"{label[target]}/{cell}/{a}/stable_rate"] = stable
                ours[(label[target], a, n, d)] = (m, sd, len(r[f"{a}/{target}/{target}"]))
                rows.append({"target": label[target], "N": n, "distribution": d, "method": a, "mean": m, "se": se,
                             "egal_mean": egal, "stable_rate": stable})
                if m < best_mean:
                    best_alg, best_mean = a, m
            metrics[f"{label[target]}/{cell}/best_algorithm"] = best_alg
            if not has_model or best_alg is None:
                continue
            cost, wn_stable = r[f"{WN}/{target}"], r[f"{WN}/stable"]
            wtl = win_tie_loss(cost, wn_stable, r[f"{best_alg}/{target}/{target}"])
            m, _, se = mean_se(cost)
            rep_cost = r[f"{WN}/rep_{target}"]
            rm, _, rse = mean_se(rep_cost)
            rwtl = win_tie_loss(rep_cost, np.ones_like(wn_stable), r[f"{best_alg}/{target}/{target}"])
            changed = r[f"{WN}/rep_changed"]
            delta = float((rep_cost - cost)[changed].mean()) if changed.any() else 0.0
            metrics.update({
                f"{label[target]}/{cell}/{WN}": m, f"{label[target]}/{cell}/{WN}/se": se,
                f"{label[target]}/{cell}/{WN}/egal": float(r[f"{WN}/egal"].mean()),
                f"{label[target]}/{cell}/{WN}/win": wtl.win, f"{label[target]}/{cell}/{WN}/tie": wtl.tie,
                f"{label[target]}/{cell}/{WN}/loss_unstable": wtl.loss,
                f"{label[target]}/{cell}/{WN_REP}": rm, f"{label[target]}/{cell}/{WN_REP}/se": rse,
                f"{label[target]}/{cell}/{WN_REP}/win": rwtl.win, f"{label[target]}/{cell}/{WN_REP}/tie": rwtl.tie,
                f"{label[target]}/{cell}/{WN_REP}/loss": rwtl.loss,
                f"{label[target]}/{cell}/{WN_REP}/mean_cost_change_when_changed": delta,
            })
            rows.append({"target": label[target], "N": n, "distribution": d, "method": WN, "mean": m, "se": se,
                         "egal_mean": float(r[f"{WN}/egal"].mean()), "stable_rate": float(wn_stable.mean())})
            rows.append({"target": label[target], "N": n, "distribution": d, "method": WN_REP, "mean": rm, "se": rse,
                         "egal_mean": float(r[f"{WN}/rep_egal"].mean()), "stable_rate": 1.0})
        if has_model:
            st = r[f"{WN}/stable"]
            metrics[f"{WN}/{cell}/stable_rate"] = float(st.mean())
            other = "argmax" if params.binarize == "hungarian" else "hungarian"
            metrics[f"{WN}/{cell}/{other}_stable_rate"] = float(r[f"{WN}/{other}_stable"].mean())
            if "PowerBalance" in params.algorithms:
                metrics.update(_seq_vs_powerbalance(f"{WN}/{cell}", r[f"{WN}/seq"], st, r["PowerBalance/seq/seq"]))
            if f"{WN_SET}/stable" in r:
                ss = r[f"{WN_SET}/stable"]
                sm, _, sse = mean_se(r[f"{WN_SET}/seq"])
                metrics[f"SEq/{cell}/{WN_SET}"], metrics[f"SEq/{cell}/{WN_SET}/se"] = sm, sse
                rows.append({"target": "SEq", "N": n, "distribution": d, "method": WN_SET, "mean": sm, "se": sse,
                             "egal_mean": float(r[f"{WN_SET}/egal"].mean()), "stable_rate": float(ss.mean())})
                metrics[f"{WN_SET}/{cell}/stable_rate"] = float(ss.mean())
                metrics[f"{WN_SET}/{cell}/own_model_rate"] = float(r[f"{WN_SET}/own"].mean())
                if "PowerBalance" in params.algorithms:
                    metrics.update(_seq_vs_powerbalance(f"{WN_SET}/{cell}", r[f"{WN_SET}/seq"], ss,
                                                        r["PowerBalance/seq/seq"]))
                ref_alg = metrics.get(f"SEq/{cell}/best_algorithm")
                if ref_alg is not None:  # Table 2's win / tie / loss+unstable against the column's best algorithm
                    swtl = win_tie_loss(r[f"{WN_SET}/seq"], ss, r[f"{ref_alg}/seq/seq"])
                    metrics.update({f"SEq/{cell}/{WN_SET}/win": swtl.win, f"SEq/{cell}/{WN_SET}/tie": swtl.tie,
                                    f"SEq/{cell}/{WN_SET}/loss_unstable": swtl.loss})
            metrics[f"{WN}/{cell}/one2one_rate"] = float(r[f"{WN}/one2one"].mean())
            metrics[f"{WN}/{cell}/repair_changed_rate"] = float(r[f"{WN}/rep_changed"].mean())
    return metrics, ours, rows


def _seq_vs_powerbalance(prefix: str, seq: np.ndarray, stable: np.ndarray, pb: np.ndarray) -> dict[str, float]:
    """Issue 13's target: mean SEq over the stable outputs vs PowerBalance on the same instances (none stable: {})."""
    if not stable.any():
        return {}
    own, ref = float(seq[stable].mean()), float(pb[stable].mean())
    return {f"{prefix}/seq_stable": own, f"{prefix}/powerbalance_seq_same": ref,
            f"{prefix}/seq_stable_ratio": own / ref if ref > 0 else math.nan}


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.2f}" if pct else f"{v:.2f}"


def markdown(params: TablesSpec, metrics: dict[str, Any], check: list[CheckRow] | None, check_note: str,
             model_note: str, has_model: bool) -> str:
    cols = [(n, d) for n in params.sizes for d in params.distributions]
    head = "| method | " + " | ".join(f"N={n} {d}" for n, d in cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    out = [f"# WeaveNet vs classical stable-matching algorithms\n\n{params.instances} test instances per cell "
           f"(seed {params.seed}), 1-based ranks, lower is better. WeaveNet binarisation: {params.binarize}. "
           f"{model_note}\n"]
    if has_model and any(f"{WN_SET}/N{n}/{d}/stable_rate" in metrics for n, d in cols):
        out.append(f"\n{WN_SET}: every model of the set solves each instance (one forward pass each); kept per instance: "
                   "the stable output with the lowest SEq, else the one with the fewest blocking pairs — read from the "
                   "preferences alone, no reference solution; each kept output is one network's raw matching, not "
                   "repaired.\n")
    for label, title in (("SEq", "Table 2 layout — mean SEq (algorithms target SEq)"),
                         ("Bal", "Table 3 layout — mean Bal (algorithms target Bal; 1-based, the paper's Bal is N lower)")):
        lines = [f"\n## {title}\n\n", head]
        for a in params.algorithms:
            lines.append(f"| {a} | " + " | ".join(_fmt(metrics.get(f"{label}/N{n}/{d}/{a}")) for n, d in cols) + " |\n")
        if has_model:
            def row(name: str, key: str, pct: bool = False) -> str:
                return f"| {name} | " + " | ".join(_fmt(metrics.get(key.format(n=n, d=d)), pct) for n, d in cols) + " |\n"
            lines += [
                row(WN, f"{label}/N{{n}}/{{d}}/{WN}"),
                row("Stable (%)", f"{WN}/N{{n}}/{{d}}/stable_rate", True),
                row("Stable, other binarisation (%)", f"{WN}/N{{n}}/{{d}}/{'argmax' if params.binarize == 'hungarian' else 'hungarian'}_stable_rate", True),
                row("SEq over stable outputs", f"{WN}/N{{n}}/{{d}}/seq_stable"),
                row("PowerBalance SEq, same instances", f"{WN}/N{{n}}/{{d}}/powerbalance_seq_same"),
                row("Win (%)", f"{label}/N{{n}}/{{d}}/{WN}/win", True),
                row("Tie (%)", f"{label}/N{{n}}/{{d}}/{WN}/tie", True),
                row("Loss+Unst. (%)", f"{label}/N{{n}}/{{d}}/{WN}/loss_unstable", True),
                row(WN_REP + " (always stable)", f"{label}/N{{n}}/{{d}}/{WN_REP}"),
                row("repair changed (%)", f"{WN}/N{{n}}/{{d}}/repair_changed_rate", True),
                row("cost change when changed", f"{label}/N{{n}}/{{d}}/{WN_REP}/mean_cost_change_when_changed"),
                row("+repair Win (%)", f"{label}/N{{n}}/{{d}}/{WN_REP}/win", True),
                row("+repair Tie (%)", f"{label}/N{{n}}/{{d}}/{WN_REP}/tie", True),
                row("+repair Loss (%)", f"{label}/N{{n}}/{{d}}/{WN_REP}/loss", True),
            ]
            if label == "SEq" and any(f"{WN_SET}/N{n}/{d}/stable_rate" in metrics for n, d in cols):
                lines += [
                    row(f"{WN_SET}: stable (%)", f"{WN_SET}/N{{n}}/{{d}}/stable_rate", True),
                    row(f"{WN_SET}: SEq over stable outputs", f"{WN_SET}/N{{n}}/{{d}}/seq_stable"),
                    row(f"{WN_SET}: PowerBalance SEq, same instances", f"{WN_SET}/N{{n}}/{{d}}/powerbalance_seq_same"),
                    row(f"{WN_SET}: the cell's own model kept (%)", f"{WN_SET}/N{{n}}/{{d}}/own_model_rate", True),
                    row(f"{WN_SET}: Win (%)", f"SEq/N{{n}}/{{d}}/{WN_SET}/win", True),
                    row(f"{WN_SET}: Tie (%)", f"SEq/N{{n}}/{{d}}/{WN_SET}/tie", True),
                    row(f"{WN_SET}: Loss+Unst. (%)", f"SEq/N{{n}}/{{d}}/{WN_SET}/loss_unstable", True),
                ]
        lines.append("\nBest algorithm per column (the Win/Tie/Loss reference): "
                     + ", ".join(f"N={n} {d}: {metrics.get(f'{label}/N{n}/{d}/best_algorithm')}" for n, d in cols) + "\n")
        out += lines
    out.append("\n## External check against the published means (arXiv:2310.12515 Tables 2–3)\n\n")
    out.append(check_note + "\n")
    if check:
        out.append("\n| metric | method | N | dist | ours (paper's base) | paper | diff | tolerance | pass |\n|---|---|---|---|---|---|---|---|---|\n")
        for c in check:
            out.append(f"| {c.metric} | {c.method} | {c.n} | {c.dist} | {c.ours:.2f} | {c.paper:.2f} | {c.diff:+.2f} | "
                       f"{c.tolerance:.2f} | {'pass' if c.passed else '**FAIL**'} |\n")
    return "".join(out)


def describe_models(ckpt: dict[str, Any]) -> str:
    """One sentence per model of a (single or set) checkpoint: shape, objective, budget, selected step."""
    notes = []
    for name, single in members(ckpt).items():
        tf, cfg = dict(single.get("train", {})), single["config"]
        teacher = f", teacher {tf['teacher']}" if str(tf.get("objective", "")).startswith("imitation") else ""
        notes.append(f"{'one model for every distribution' if name == ANY else name}: L={cfg['layers']} D={cfg['dim']} "
                     f"{cfg['variant']}, {tf.get('objective')} ({tf.get('target', tf.get('objective'))}{teacher}), "
                     f"{tf.get('steps_done')} steps × batch {tf.get('batch_size')} at N={tf.get('train_n')} in "
                     f"{tf.get('seconds')} s on {tf.get('device')}, selected step {tf.get('best_step')}")
    return "Models — " + "; ".join(notes) + "."


def check_note(check: list[CheckRow] | None, sigmas: float, instances: int) -> str:
    """The sentence that explains the external check (§4.3 "Checkability") and its result."""
    if check is None:
        return "Skipped (--paper-table none)."
    n_pass = sum(c.passed for c in check)
    return (f"Check: for each published GS / PolyMin / DACC / PowerBalance mean in our grid, pass iff "
            f"|ours − paper| ≤ {sigmas:g} · sd · √(1/{instances} + 1/1000) (the standard error of a difference of "
            f"two independent means; the paper's sd is taken equal to ours). Bal: the paper reports 0-based ranks "
            f"(Tziavelis's Java), so ours is shown minus N; SEq is base-free. Result: {n_pass}/{len(check)} cells pass.")


def cells_csv(rows: list[dict[str, Any]]) -> str:
    """The per-(N, distribution, method) rows of :func:`summarise` as csv text."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["target", "N", "distribution", "method", "mean", "se", "egal_mean", "stable_rate"],
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
