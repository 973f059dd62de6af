"""A model's construction and its saved form: plain types plus a ``state_dict``, loadable with ``weights_only``.

* :func:`build_model` — a freshly initialised :class:`~crossmatch.icpa.model.ICPAModel` (depends on the seed only);
* :func:`model_payload` / :func:`model_from_payload` — what a saved model holds, and the model rebuilt from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from crossmatch.icpa.config import ModelConfig
from crossmatch.icpa.graph import SourceSchema
from crossmatch.icpa.model import ICPAModel


def seed_everything(seed: int) -> None:
    """Same seed, same result on CPU (DEVELOPERS.md determinism rules)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(schemas: list[SourceSchema], n_categories: int, config: ModelConfig, seed: int) -> ICPAModel:
    """A freshly initialised model; initialisation depends on ``seed`` only."""
    seed_everything(seed)
    return ICPAModel(schemas, n_categories, config)


def model_payload(model: ICPAModel, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a saved model holds: how to rebuild it (plain types) plus its ``state_dict``."""
    cfg = model.config
    meta = {
        "schemas": [s.to_dict() for s in model.schemas],
        "n_categories": int(model.category.num_embeddings),
        # every ModelConfig field: a field left out here silently rebuilds a different model
        "model": {**dataclasses.asdict(cfg), "hidden": list(cfg.hidden)},
    }
    meta.update(extra or {})
    return {"meta": meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def model_from_payload(payload: dict[str, Any]) -> ICPAModel:
    meta = payload["meta"]
    model = ICPAModel([SourceSchema.from_dict(s) for s in meta["schemas"]], int(meta["n_categories"]),
                      ModelConfig(**meta["model"]))
    model.load_state_dict(payload["state_dict"])
    return model
