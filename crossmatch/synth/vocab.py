"""Pseudo-word vocabularies and item titles for the synthetic world.

Titles mix three kinds of tokens so that title similarity is informative but
imperfect, like real catalogues written by different teams:

* words of the item's coarse category and of its hidden concept (shared meaning);
* an optional model number, shared by all items of a concept;
* noise words that belong to one source only.

Each source after the first respells a share of the shared words (``synonym_rate``),
so two sources "speak different languages" about the same concept.
"""

from __future__ import annotations

import numpy as np

_CONSONANTS = list("bcdfghjklmnprstvz")
_VOWELS = list("aeiou")
_SYLLABLES = np.array([c + v for c in _CONSONANTS for v in _VOWELS])


def pseudo_words(rng: np.random.Generator, n: int, syllables: int = 3, exclude: set[str] | None = None) -> list[str]:
    """Return ``n`` distinct pronounceable pseudo-words (none of them in ``exclude``)."""
    exclude = exclude or set()
    n_syl = len(_SYLLABLES)
    # Lengthen the words until the space is comfortably larger than what is asked for,
    # otherwise rejection sampling would never finish.
    while n_syl**syllables < 4 * (n + len(exclude)):
        syllables += 1
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        need = n - len(out)
        codes = rng.integers(0, n_syl, size=(int(need * 1.3) + 8, syllables))
        words = ["".join(row) for row in _SYLLABLES[codes]]
        for w in words:
            if w not in seen:
                seen.add(w)
                out.append(w)
                if len(out) == n:
                    break
    return out


def model_numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct model numbers such as ``kx4821``: two letters and four digits."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        need = n - len(out)
        lt = letters[rng.integers(0, 26, size=(need + 8, 2))]
        dg = rng.integers(0, 10_000, size=need + 8)
        for (a, b), d in zip(lt, dg, strict=True):
            w = f"{a}{b}{d:04d}"
            if w not in seen:
                seen.add(w)
                out.append(w)
                if len(out) == n:
                    break
    return out


def synonym_map(rng: np.random.Generator, shared: list[str], rate: float, taken: set[str]) -> dict[str, str]:
    """Map a ``rate`` share of the shared words to fresh source-specific spellings."""
    if rate <= 0 or not shared:
        return {}
    k = int(round(rate * len(shared)))
    chosen = rng.choice(len(shared), size=k, replace=False)
    fresh = pseudo_words(rng, k, syllables=3, exclude=taken)
    taken.update(fresh)
    return {shared[i]: w for i, w in zip(chosen.tolist(), fresh, strict=True)}


def make_titles(
    rng: np.random.Generator,
    item_concepts: np.ndarray,
    concept_category: np.ndarray,
    concept_vocab: list[list[str]],
    category_vocab: list[list[str]],
    concept_model: list[str],
    noise_vocab: list[str],
    synonyms: dict[str, str],
    *,
    title_concept_words: int,
    title_noise_words: int,
    model_number_rate: float,
) -> list[str]:
    """Compose one title per item from its concept's words, its category's words and noise."""
    n = len(item_concepts)
    n_cw = len(concept_vocab[0]) if concept_vocab else 0
    picks = np.argsort(rng.random((n, n_cw)), axis=1)[:, :title_concept_words]
    cat_pick = rng.integers(0, len(category_vocab[0]), size=n)
    noise_pick = rng.integers(0, max(1, len(noise_vocab)), size=(n, title_noise_words))
    has_model = rng.random(n) < model_number_rate
    titles: list[str] = []
    for i in range(n):
        c = int(item_concepts[i])
        words = [category_vocab[int(concept_category[c])][int(cat_pick[i])]]
        words += [concept_vocab[c][int(j)] for j in picks[i]]
        words = [synonyms.get(w, w) for w in words]
        if has_model[i]:
            words.append(concept_model[c])
        if noise_vocab:
            words = [noise_vocab[int(j)] for j in noise_pick[i][:1]] + words + [
                noise_vocab[int(j)] for j in noise_pick[i][1:]
            ]
        titles.append(" ".join(words))
    return titles
