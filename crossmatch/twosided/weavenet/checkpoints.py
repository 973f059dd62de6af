"""WeaveNet checkpoints: one model, or a *model set* with one model per preference distribution.

The paper trains one WeaveNet per distribution (ALGORITHMS.md §3.6, experiment 2); a model set keeps them in
one plain dictionary so the stages pass a single file around:

* single model: ``{"state_dict", "config", "train"}`` (:func:`checkpoint`);
* model set: ``{"format": "weavenet-set", "models": {dist: single model}}`` (:func:`model_set`). A key
  ``"<dist>@<N>"`` (:func:`size_key`) holds a size specialist: the model for that distribution at market
  size N (issue 13: one model per distribution and size); other sizes fall back to the ``<dist>`` model.

:func:`load_models` reads either and returns ``{dist: WeaveNet}``; a single model is filed under
:data:`ANY` and serves every distribution (:func:`model_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from crossmatch.twosided.generators import DISTRIBUTIONS
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig

SET_FORMAT = "weavenet-set"
ANY = "*"


def size_key(distribution: str, n: int) -> str:
    """The model-set key of the specialist for ``distribution`` at size ``n`` (``"UU@30"``)."""
    return f"{distribution}@{int(n)}"


def split_key(key: str) -> tuple[str, int | None]:
    """``(distribution, N)`` of a size-specialist key, ``(key, None)`` for any other key."""
    dist, sep, n = key.partition("@")
    if not sep:
        return key, None
    if not n.isdigit() or int(n) < 2:
        raise ValueError(f"bad WeaveNet model key {key!r}: expected '<distribution>@<N>' with N >= 2")
    return dist, int(n)


def checkpoint(model_cfg: WeaveNetConfig, result: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """The object a single-model ``weavenet.pt`` holds: ``state_dict`` (of a ``TrainResult``) plus
    ``config`` (model shape) and training facts."""
    return {"state_dict": result.state_dict, "config": model_cfg.to_dict(), "train": extra}


def model_set(models: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A model set from single-model checkpoints keyed by distribution name."""
    if not models:
        raise ValueError("a WeaveNet model set needs at least one model")
    for name, ckpt in models.items():
        _check_single(ckpt, name)
    return {"format": SET_FORMAT, "models": dict(models)}


def is_model_set(ckpt: Any) -> bool:
    return isinstance(ckpt, dict) and ckpt.get("format") == SET_FORMAT


def members(ckpt: Any) -> dict[str, dict[str, Any]]:
    """``{dist: single-model checkpoint}`` of a set, or ``{ANY: ckpt}`` for a single model."""
    if is_model_set(ckpt):
        models = ckpt.get("models")
        if not isinstance(models, dict) or not models:
            raise ValueError("WeaveNet model set without models")
        for name, single in models.items():
            _check_single(single, name)
            dist, _ = split_key(name)  # a malformed size key is an error, never a model nobody uses
            if dist not in DISTRIBUTIONS:
                raise ValueError(f"WeaveNet model set key {name!r}: unknown distribution {dist!r} "
                                 f"(known: {list(DISTRIBUTIONS)})")
        return dict(models)
    _check_single(ckpt, ANY)
    return {ANY: ckpt}


def _check_single(ckpt: Any, name: str) -> None:
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise ValueError(f"not a WeaveNet checkpoint ({name}): expected a dict with 'state_dict' and 'config'")


def load_model(ckpt: dict[str, Any], device: torch.device | None = None) -> WeaveNet:
    """Rebuild a :class:`WeaveNet` from a single-model :func:`checkpoint` dictionary (eval mode)."""
    _check_single(ckpt, ANY)
    model = WeaveNet(WeaveNetConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    model.to(device or torch.device("cpu"))
    model.eval()
    return model


def load_models(ckpt: Any, device: torch.device | None = None) -> dict[str, WeaveNet]:
    """Every model of a checkpoint: ``{dist: WeaveNet}`` for a set, ``{ANY: WeaveNet}`` for a single model."""
    return {name: load_model(single, device) for name, single in members(ckpt).items()}


def model_for(models: Mapping[str, WeaveNet], distribution: str, n: int | None = None) -> WeaveNet:
    """The model for ``distribution`` at size ``n``: its size specialist (:func:`size_key`) if the set has one,
    else the distribution's own, else the catch-all single model; a clear error otherwise."""
    if n is not None and size_key(distribution, n) in models:
        return models[size_key(distribution, n)]
    if distribution in models:
        return models[distribution]
    if ANY in models:
        return models[ANY]
    raise ValueError(f"no WeaveNet model for distribution {distribution!r}; the checkpoint has {sorted(models)}")
