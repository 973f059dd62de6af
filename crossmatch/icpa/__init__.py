"""ICPA: multi-source graph learning with gated sliced alignment and Pareto fine-tuning.

ALGORITHMS.md §2 (seed 000). Layout: ``graph`` (per-source CSR tensors), ``sampler``
(vectorised neighbour/pair/batch sampling), ``model`` (feature embeddings, GraphSAGE-style
hop, double tower, gates), ``losses`` (pair BCE, eq. 6), ``sliced`` (SWD/SGWD, eq. 9),
``source_loss`` (a step's per-source loss L_j), ``alignment`` (the batch alignment loss that
trains: category layout, gated SWD + SGWD, gate losses; over ``sliced_grouped``),
``min_norm`` + ``weighting`` (λ sampling, ParetoMTL, baselines' weightings), ``train``
(phases, checkpoint state), ``payload`` (building, saving and rebuilding a model), ``methods``
(ICPA, baselines and ablations as configs), ``inference`` (embeddings, eq. 10 retrieval).

The stages' protocols: ``params`` (the typed ``icpa`` section), ``data`` (the loaded world and its
evaluation splits), ``runs`` (one resumable training run), ``phases`` (train_align's phase 1,
pareto_finetune's per-target phase 2), ``table`` (icpa_eval's results table, verdicts),
``report`` (metrics, embeddings, alignment hit@k) and ``figures``.
"""

from crossmatch.icpa.alignment import CategoryLayout, alignment_loss, category_layout
from crossmatch.icpa.config import AlignConfig, ModelConfig, PairConfig, PhaseConfig
from crossmatch.icpa.graph import (
    CSR,
    MultiSourceGraph,
    SourceFrames,
    SourceGraph,
    SourceSchema,
    build_multisource_graph,
    build_source_graph,
)
from crossmatch.icpa.inference import item_embeddings, learned_scorer
from crossmatch.icpa.losses import gate_loss, pair_loss
from crossmatch.icpa.methods import JOINT, LABELS, METHODS, PER_TARGET, Schedule
from crossmatch.icpa.min_norm import min_norm_simplex
from crossmatch.icpa.model import ICPAModel
from crossmatch.icpa.sliced import sliced_alignment, sliced_gromov_alignment
from crossmatch.icpa.source_loss import pooled_source_loss, source_loss
from crossmatch.icpa.train import Trainer, build_model, model_from_payload, model_payload, resolve_device

__all__ = [
    "CSR", "CategoryLayout", "JOINT", "LABELS", "METHODS", "PER_TARGET",
    "AlignConfig", "ICPAModel", "ModelConfig", "MultiSourceGraph", "PairConfig", "PhaseConfig", "Schedule",
    "SourceFrames", "SourceGraph", "SourceSchema", "Trainer",
    "alignment_loss", "build_model", "build_multisource_graph", "build_source_graph", "category_layout", "gate_loss",
    "learned_scorer",
    "item_embeddings", "min_norm_simplex", "model_from_payload", "model_payload", "pair_loss",
    "pooled_source_loss", "resolve_device", "sliced_alignment", "sliced_gromov_alignment", "source_loss",
]
