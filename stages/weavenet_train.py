"""Stage ``weavenet_train``: train WeaveNet models on fresh random instances (ALGORITHMS.md §3.4–3.6; issue 13).

Outputs:
    --out         weavenet.pt: one model ``{"state_dict", "config", "train"}``, or with ``per_distribution``
                  a model set ``{"format": "weavenet-set", "models": {dist: model}}`` (one model per distribution,
                  the paper's protocol); each model is the best validation checkpoint of its run
    --metrics     flat JSON: steps, wall time, device, parameter count, best validation figures (per model)
    --plot-csv    per-validation training curves (model, step, losses, validation stable rate and costs)
    --plot-png    the same curves as a PNG (matplotlib Agg)

``objective``: unsupervised (the paper's losses) | imitation (of a teacher's stable matching) |
imitation+unsupervised. ``init_checkpoint`` (optional; one file or a list, merged) starts from saved models,
e.g. the shipped set; their shapes must equal the params'. Validation runs before the first step, so with
``steps: 0`` the stage only validates and re-emits the checkpoint, and fine-tuning never selects a worse one.
The params and each model's plan are crossmatch.twosided.weavenet.plan; what a run leaves behind (checkpoint,
facts, metrics) is crossmatch.twosided.weavenet.runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress, TaskID

from crossmatch.checkpoint import save_checkpoint
from crossmatch.twosided.weavenet import runs
from crossmatch.twosided.weavenet.checkpoints import ANY, model_set, split_key
from crossmatch.twosided.weavenet.curves import curve_csv, plot_curves
from crossmatch.twosided.weavenet.plan import WeaveNetRunConfig, plan
from crossmatch.twosided.weavenet.train import TrainResult, resolve_device, train
from stages._common import console, load_section, params_as, run, write_atomic, write_json, write_text


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.weavenet_train", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--section", default="weavenet_train")
    ap.add_argument("--out", default="data/twosided/weavenet.pt")
    ap.add_argument("--metrics", default="metrics/weavenet_train.json")
    ap.add_argument("--plot-csv", default="plots/weavenet_train.csv")
    ap.add_argument("--plot-png", default="plots/weavenet_train.png")
    args = ap.parse_args()
    params = params_as(WeaveNetRunConfig, load_section(args.section, args.params), args.section)
    init = (runs.read_starts(params.init_checkpoint, hint="set weavenet_train.init_checkpoint: null to train from scratch")
            if params.init_checkpoint else None)
    groups: list[str | None] = list(params.distributions) if params.per_distribution else [None]
    if params.per_distribution and init is not None:  # size specialists of the set go on, each at its own N
        groups += [k for k in init if split_key(k)[1] is not None and split_key(k)[0] in params.distributions]
    plans = [plan(params, g) for g in groups]  # all checked first
    device = resolve_device(params.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    results: list[tuple[str, TrainResult]] = []
    ckpts: dict[str, dict[str, Any]] = {}
    metrics: dict[str, Any] = {}
    for g, model_cfg, cfg in plans:
        name = g or ANY
        state = runs.start_state(init, g, model_cfg) if init is not None else None
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"weavenet_train {name}", total=max(cfg.steps, 1))

            def on_step(step: int, row: dict[str, float], name: str = name, task: TaskID = task) -> None:
                desc = f"weavenet_train {name} (val stable {row['val_stable_rate']:.2f})" if row else None
                progress.update(task, completed=step, description=desc)  # None keeps the description

            result = train(model_cfg, cfg, device=device, init_state=state, on_step=on_step)
        facts = runs.run_facts(cfg, result, device, params.init_checkpoint)
        ckpts[name] = runs.shipped_checkpoint(model_cfg, result, facts, init, g)
        results.append((name, result))
        metrics.update(runs.run_metrics("" if g is None else f"{g}/", facts, model_cfg, result))
        console.print(f"weavenet_train {name}: {result.steps_done} steps in {result.seconds:.0f}s on {device}; best step "
                      f"{result.best_step}: val stable {result.best_val['stable_rate']:.3f}, SEq {result.best_val['seq']:.2f}")
        if cfg.lr_schedule == "cosine" and result.steps_done < cfg.steps:
            console.print(f"[yellow]note: max_seconds stopped {name} at step {result.steps_done} of {cfg.steps}, before the "
                          f"cosine schedule ended; lower steps to what fits the budget[/yellow]")
    cfg0 = plans[0][2]
    metrics["val_binarize"] = cfg0.val_binarize
    if len({p[2].val_n for p in plans}) == 1:  # else (size specialists) each model's own <name>/val_n says it
        metrics.update({"val_n": ",".join(map(str, cfg0.val_n)),
                        "val_instances_per_model": cfg0.val_size * len(cfg0.distributions) * len(cfg0.val_n)})
    out = Path(args.out)
    obj = model_set(ckpts) if params.per_distribution else ckpts[ANY]
    write_atomic(out, lambda p: save_checkpoint(obj, p))
    write_json(args.metrics, metrics)
    write_text(args.plot_csv, curve_csv(results))
    m0 = plans[0][1]
    title = (f"WeaveNet L={m0.layers} D={m0.dim} ({params.variant}), {cfg0.objective} / {cfg0.target}, "
             f"N={'/'.join(map(str, cfg0.train_n))}")
    write_atomic(Path(args.plot_png), lambda p: plot_curves(results, p, title=title, binarize=cfg0.val_binarize))
    console.print(f"weavenet_train: {len(results)} model(s) -> {out}")


if __name__ == "__main__":
    run("weavenet_train", main)
