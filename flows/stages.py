"""The stage registry the flows run: one entry per DVC stage, in ``dvc.yaml`` order.

DVC owns the DAG and the cache; this list only says how Prefect runs each stage:
its resource tag (``cpu``/``gpu``, for tag concurrency limits and worker routing) and
whether it is I/O-bound (those get retries with backoff). ``tests/test_flow_order.py``
checks that this order agrees with ``dvc.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    name: str
    resource: str = "cpu"  # "cpu" | "gpu"
    io: bool = False  # reads external inputs: retried with backoff

    @property
    def tags(self) -> set[str]:
        return {self.resource, "dvc"}


STAGES: tuple[StageSpec, ...] = (
    StageSpec("generate"),
    StageSpec("ingest", io=True),
    StageSpec("edges"),
    # ICPA: StageSpec("train_align", "gpu"), StageSpec("pareto_finetune", "gpu")
    # BiPoly: StageSpec("blocking")
    # Two-sided: StageSpec("weavenet_train", "gpu"), StageSpec("weavenet_eval"), StageSpec("match")
    # StageSpec("evaluate")
)

# Retry schedule for I/O-bound stages (seconds before retry 1, 2, 3).
IO_RETRY_DELAYS: list[float] = [2.0, 5.0, 15.0]
