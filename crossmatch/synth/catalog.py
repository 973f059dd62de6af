"""Concepts, per-source catalogues, features, titles and fine taxonomies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from crossmatch.synth.config import WorldConfig
from crossmatch.synth.taxonomy import contiguous_taxonomy, star_taxonomies
from crossmatch.synth.vocab import make_titles, model_numbers, pseudo_words, synonym_map


@dataclass
class Concepts:
    """The hidden ground truth every source draws its items from."""

    category: np.ndarray  # (C,) coarse category index
    rank: np.ndarray  # (C,) position on the category's axis, 0..per_category-1
    latent: np.ndarray  # (C, d)
    category_names: list[str]


@dataclass
class SourceCatalog:
    """One source's items. Arrays are indexed by the source's item index."""

    name: str
    item_ids: list[str]
    concept: np.ndarray  # (n,) hidden concept of each item
    fine: np.ndarray  # (n,) fine-category index (after misfiling)
    fine_names: list[str]  # per fine category
    fine_coarse: np.ndarray  # (n_fine,) coarse category of each fine category
    design_fine: np.ndarray  # (C,) fine category of every concept in this source's taxonomy (-1: dropped)
    item_of_concept: np.ndarray  # (C,) item index, -1 when the concept is absent from this source
    frame: pl.DataFrame = field(repr=False)  # item_id, title, category, fine_category, features


def make_concepts(cfg: WorldConfig, rng: np.random.Generator) -> Concepts:
    """Concept latents: category centre + position along a category direction + noise."""
    k, per, d = cfg.n_categories, cfg.concepts_per_category, cfg.latent_dim
    category = np.repeat(np.arange(k), per)
    rank = np.tile(np.arange(per), k)
    centre = rng.normal(0.0, 1.0, size=(k, d))
    direction = rng.normal(0.0, 1.0, size=(k, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    pos = (rank + 0.5) / per
    latent = centre[category] + 2.0 * pos[:, None] * direction[category] + 0.3 * rng.normal(size=(k * per, d))
    names = pseudo_words(rng, k, syllables=3)
    return Concepts(category=category, rank=rank, latent=latent, category_names=names)


def _presence(cfg: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """(m, C) mask of concepts present per source; every category keeps >= 2 items per source."""
    m, c = len(cfg.sources), cfg.n_concepts
    present = rng.random((m, c)) < cfg.concept_coverage
    per = cfg.concepts_per_category
    need = min(2, per)
    for s in range(m):
        block = present[s].reshape(cfg.n_categories, per)
        short = np.flatnonzero(block.sum(axis=1) < need)
        for kk in short:
            block[kk, rng.choice(per, size=need, replace=False)] = True
    return present


def _features(
    cfg: WorldConfig, rng: np.random.Generator, latent: np.ndarray, n_cat: int, n_dense: int
) -> dict[str, np.ndarray]:
    """Source-specific feature columns: random projections of the concept latent plus noise."""
    d = latent.shape[1]
    cols: dict[str, np.ndarray] = {}
    for j in range(n_cat):
        proj = latent @ rng.normal(size=d) / np.sqrt(d) + 0.3 * rng.normal(size=len(latent))
        edges = np.quantile(proj, np.linspace(0, 1, cfg.categorical_cardinality + 1)[1:-1])
        value = np.searchsorted(edges, proj)
        flip = rng.random(len(latent)) < 0.1
        value[flip] = rng.integers(0, cfg.categorical_cardinality, size=int(flip.sum()))
        cols[f"cat_{j}"] = value.astype(np.int64)
    if n_dense:
        a = rng.normal(size=(d, n_dense)) / np.sqrt(d)
        dense = latent @ a + 0.3 * rng.normal(size=(len(latent), n_dense))
        # Rounded: the product's last bits depend on the BLAS kernel of the CPU (OpenBLAS picks one per
        # machine), and the data must be the same bytes on every machine for one seed.
        dense = np.round(dense, 6)
        for j in range(n_dense):
            cols[f"num_{j}"] = dense[:, j].astype(np.float64)
    return cols


def _design_taxonomies(cfg: WorldConfig, rng: np.random.Generator) -> list[np.ndarray]:
    k, per = cfg.n_categories, cfg.concepts_per_category
    m = len(cfg.sources)
    if m == 1:
        return [contiguous_taxonomy(rng, k, per, cfg.fine_group_mean)]
    fa, fb = star_taxonomies(rng, k, per, cfg.fine_group_mean, cfg.fine_max_clients)
    out = [fa, fb]
    for _ in range(2, m):
        out.append(contiguous_taxonomy(rng, k, per, cfg.other_fine_group_mean))
    return out


def make_catalogs(cfg: WorldConfig, rng: np.random.Generator, concepts: Concepts) -> list[SourceCatalog]:
    """Build every source's catalogue: items, ids, titles, features and fine taxonomy."""
    present = _presence(cfg, rng)
    designs = _design_taxonomies(cfg, rng)
    n_concepts = cfg.n_concepts

    # Shared vocabulary: words per category and per concept; one model number per concept.
    cat_words = pseudo_words(rng, cfg.n_categories * cfg.category_words, syllables=2)
    category_vocab = [
        cat_words[i * cfg.category_words : (i + 1) * cfg.category_words] for i in range(cfg.n_categories)
    ]
    taken = set(cat_words) | set(concepts.category_names)
    con_words = pseudo_words(rng, n_concepts * cfg.concept_words, syllables=3, exclude=taken)
    taken |= set(con_words)
    concept_vocab = [con_words[i * cfg.concept_words : (i + 1) * cfg.concept_words] for i in range(n_concepts)]
    models = model_numbers(rng, n_concepts)
    shared_words = cat_words + con_words

    catalogs: list[SourceCatalog] = []
    for s, name in enumerate(cfg.sources):
        concept_idx = np.flatnonzero(present[s])
        n = len(concept_idx)
        order = rng.permutation(n)  # item order carries no information about concepts
        concept_of_item = concept_idx[order]
        item_of_concept = np.full(n_concepts, -1, dtype=np.int64)
        item_of_concept[concept_of_item] = np.arange(n)
        width = max(6, len(str(n)))
        id_codes = rng.permutation(n)
        item_ids = [f"{name}-i{int(code):0{width}d}" for code in id_codes]

        # Fine taxonomy: keep only fine categories that hold at least one item, relabel densely.
        design = designs[s]
        used = np.unique(design[concept_of_item])
        relabel = np.full(int(design.max()) + 1, -1, dtype=np.int64)
        relabel[used] = np.arange(len(used))
        design_fine = relabel[design]
        fine = design_fine[concept_of_item]
        fine_coarse = np.zeros(len(used), dtype=np.int64)
        fine_coarse[design_fine[design_fine >= 0]] = concepts.category[design_fine >= 0]
        if cfg.misfile_rate > 0 and n > 1:
            fine = _misfile(rng, fine, fine_coarse, concepts.category[concept_of_item], cfg.misfile_rate)
        fine_words = pseudo_words(rng, len(used), syllables=2, exclude=taken)
        fine_names = [
            f"{concepts.category_names[int(fine_coarse[f])]}: {fine_words[f]}" for f in range(len(used))
        ]

        noise = pseudo_words(rng, cfg.noise_words_per_source, syllables=2, exclude=taken)
        taken |= set(noise)
        synonyms = synonym_map(rng, shared_words, cfg.synonym_rate, taken) if s > 0 else {}
        titles = make_titles(
            rng,
            concept_of_item,
            concepts.category,
            concept_vocab,
            category_vocab,
            models,
            noise,
            synonyms,
            title_concept_words=cfg.title_concept_words,
            title_noise_words=cfg.title_noise_words,
            model_number_rate=cfg.model_number_rate,
        )
        feats = _features(
            cfg, rng, concepts.latent[concept_of_item], cfg.categorical_features[s], cfg.dense_features[s]
        )
        frame = pl.DataFrame(
            {
                "item_id": item_ids,
                "title": titles,
                "category": [concepts.category_names[int(c)] for c in concepts.category[concept_of_item]],
                "fine_category": [fine_names[int(f)] for f in fine],
                **feats,
            }
        )
        catalogs.append(
            SourceCatalog(
                name=name,
                item_ids=item_ids,
                concept=concept_of_item,
                fine=fine,
                fine_names=fine_names,
                fine_coarse=fine_coarse,
                design_fine=design_fine,
                item_of_concept=item_of_concept,
                frame=frame,
            )
        )
    return catalogs


def _misfile(
    rng: np.random.Generator, fine: np.ndarray, fine_coarse: np.ndarray, item_coarse: np.ndarray, rate: float
) -> np.ndarray:
    """Move a ``rate`` share of items to another fine category of the same coarse category."""
    fine = fine.copy()
    counts = np.bincount(fine, minlength=len(fine_coarse))
    movers = np.flatnonzero(rng.random(len(fine)) < rate)
    for i in movers:
        if counts[fine[i]] <= 1:  # never empty a fine category: it would have no items at all
            continue
        options = np.flatnonzero((fine_coarse == item_coarse[i]) & (np.arange(len(fine_coarse)) != fine[i]))
        if len(options):
            target = int(rng.choice(options))
            counts[fine[i]] -= 1
            counts[target] += 1
            fine[i] = target
    return fine
