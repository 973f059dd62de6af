"""Loss-weighting methods, one per file, behind a registry (LibMTL layout).

=================  ===========================================  ==========================
key                method                                       used by
=================  ===========================================  ==========================
``equal``          Σ_j L_j                                      Base, SOO, MMoE
``random_convex``  random convex λ each step (§2.6)             ICPA phase 1
``fixed_linear``   z/Σz, z = (1, ε, …) (§2.11)                  w/o Pareto
``pareto_mtl``     ParetoMTL with the target preference (§2.7)  ICPA phase 2, w/o Front
``uncertainty``    learned e^{−s_j} L_j + s_j (Kendall 2018)    M2GRL baseline (issue 10)
=================  ===========================================  ==========================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from crossmatch.errors import ConfigError
from crossmatch.icpa.weighting.abstract import AbsWeighting
from crossmatch.icpa.weighting.equal import EqualWeighting
from crossmatch.icpa.weighting.fixed_linear import FixedLinearWeighting
from crossmatch.icpa.weighting.pareto_mtl import ParetoMTLWeighting, pmtl_weights, preference_set
from crossmatch.icpa.weighting.random_convex import RandomConvexWeighting
from crossmatch.icpa.weighting.uncertainty import UncertaintyWeighting

WEIGHTINGS: dict[str, type[AbsWeighting]] = {
    cls.name: cls for cls in (EqualWeighting, RandomConvexWeighting, FixedLinearWeighting, ParetoMTLWeighting,
                              UncertaintyWeighting)
}


def make_weighting(name: str, n_sources: int, target: int | None = None,
                   options: Mapping[str, Any] | None = None) -> AbsWeighting:
    """Instantiate the weighting ``name`` with its typed options (unknown keys are a ConfigError)."""
    if name not in WEIGHTINGS:
        raise ConfigError(f"unknown weighting {name!r}; known: {sorted(WEIGHTINGS)}")
    cls = WEIGHTINGS[name]
    opts = dict(options or {})
    known = {f.name for f in dataclasses.fields(cls.Options)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ConfigError(f"weighting {name!r}: unknown option(s) {unknown}; known: {sorted(known)}")
    return cls(n_sources, target, cls.Options(**opts))


__all__ = [
    "WEIGHTINGS",
    "AbsWeighting",
    "EqualWeighting",
    "FixedLinearWeighting",
    "ParetoMTLWeighting",
    "RandomConvexWeighting",
    "UncertaintyWeighting",
    "make_weighting",
    "pmtl_weights",
    "preference_set",
]
