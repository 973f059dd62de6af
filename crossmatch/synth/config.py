"""Sizes and knobs of the synthetic multi-source world, with named presets.

The presets are the contract with the rest of the project:

* ``tiny``   — a few hundred events; unit and stage tests.
* ``default``— what ``dvc repro`` runs; every stage together stays within a few minutes on 2 cores.
* ``large``  — at least 10 M events; benchmarks only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from crossmatch.errors import ConfigError
from crossmatch.params import check_fields


@dataclass(frozen=True)
class WorldConfig:
    """Every knob of :func:`crossmatch.synth.generate_world`.

    Per-source tuples are aligned with ``sources``. The sparse source is simply the one
    with fewer users (``users_per_source``), so its interactions per item are ~10x lower.
    """

    seed: int = 0
    sources: tuple[str, ...] = ("alpha", "beta", "gamma")
    n_categories: int = 20
    concepts_per_category: int = 20
    # Probability that a concept has an item in a given source; absent concepts make
    # catalogues overlap only partly, as real ones do.
    concept_coverage: float = 0.85
    latent_dim: int = 16

    # Interaction logs.
    users_per_source: tuple[int, ...] = (1500, 1500, 150)
    sessions_per_user: float = 4.0
    events_per_session: float = 5.0
    favourite_categories: int = 3
    taste_spread: float = 0.06  # std of an event's position around the user's taste on the concept axis
    session_drift: float = 0.03  # std of the per-event random walk inside a session
    popular_rate: float = 0.15  # share of events that go to a category's popular items instead
    zipf_exponent: float = 1.2
    start: str = "2024-01-01T00:00:00"
    days: float = 60.0

    # Item features: different columns per source.
    categorical_features: tuple[int, ...] = (3, 2, 4)
    dense_features: tuple[int, ...] = (4, 6, 2)
    categorical_cardinality: int = 12

    # Titles.
    category_words: int = 4
    concept_words: int = 4
    title_concept_words: int = 3
    noise_words_per_source: int = 40
    title_noise_words: int = 2
    synonym_rate: float = 0.3  # share of shared words a non-first source spells its own way
    model_number_rate: float = 0.6  # probability a title carries the concept's model number

    # Fine taxonomies.
    fine_group_mean: float = 3.0  # concepts per star group of the first two sources
    fine_max_clients: int = 3
    other_fine_group_mean: float = 5.0  # granularity of sources after the first two
    misfile_rate: float = 0.02  # items filed under a wrong fine category of their coarse category

    def __post_init__(self) -> None:
        m = len(self.sources)
        if m < 1:
            raise ConfigError("generate: at least one source is needed")
        if len(set(self.sources)) != m:
            raise ConfigError(f"generate: source names must be unique, got {list(self.sources)}")
        for name in ("users_per_source", "categorical_features", "dense_features"):
            value = getattr(self, name)
            if len(value) != m:
                raise ConfigError(
                    f"generate: '{name}' has {len(value)} entries but there are {m} sources {list(self.sources)}"
                )
        positive = ("n_categories", "concepts_per_category", "latent_dim", "concept_words", "category_words")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"generate: '{name}' must be >= 1, got {getattr(self, name)}")
        if self.title_concept_words > self.concept_words:
            raise ConfigError("generate: 'title_concept_words' cannot exceed 'concept_words'")
        for name in ("concept_coverage", "popular_rate", "synonym_rate", "model_number_rate", "misfile_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"generate: '{name}' must lie in [0, 1], got {v}")
        if any(u < 1 for u in self.users_per_source):
            raise ConfigError("generate: every source needs at least one user")
        if self.sessions_per_user < 1 or self.events_per_session < 1:
            raise ConfigError("generate: 'sessions_per_user' and 'events_per_session' must be >= 1")

    @property
    def n_concepts(self) -> int:
        return self.n_categories * self.concepts_per_category

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, WorldConfig] = {
    "tiny": WorldConfig(
        n_categories=3,
        concepts_per_category=8,
        users_per_source=(40, 40, 8),
        sessions_per_user=3.0,
        events_per_session=4.0,
        noise_words_per_source=10,
        misfile_rate=0.0,
        taste_spread=0.12,
    ),
    "default": WorldConfig(),
    "large": WorldConfig(
        concepts_per_category=2500,
        users_per_source=(240_000, 240_000, 24_000),
        sessions_per_user=4.0,
        events_per_session=5.0,
        taste_spread=0.002,
        session_drift=0.001,
    ),
}


def make_config(preset: str = "default", seed: int = 0, overrides: dict[str, Any] | None = None) -> WorldConfig:
    """Build a :class:`WorldConfig` from a named preset, a seed and field overrides.

    Raises:
        ConfigError: unknown preset or override key, or an override of the wrong shape.
    """
    if preset not in PRESETS:
        raise ConfigError(f"generate: unknown preset '{preset}'; choose one of {sorted(PRESETS)}")
    overrides = dict(overrides or {})
    known = {f.name for f in fields(WorldConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"generate: unknown override(s) {unknown}; known fields: {sorted(known)}")
    overrides = check_fields(WorldConfig, overrides, "generate.overrides")
    for key, value in list(overrides.items()):
        if isinstance(value, list):
            overrides[key] = tuple(value)
    return replace(PRESETS[preset], seed=seed, **overrides)
