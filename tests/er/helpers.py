"""A small synthetic two-table benchmark with known duplicates (noisy copies of product titles)."""

from __future__ import annotations

import numpy as np
import polars as pl

BRANDS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"]
NOUNS = ["camera", "laptop", "printer", "router", "speaker", "monitor", "keyboard", "tablet", "phone", "drive"]


def _noisy(rng: np.random.Generator, text: str) -> str:
    words = text.split()
    if len(words) > 2 and rng.random() < 0.5:
        words.pop(int(rng.integers(1, len(words))))
    if rng.random() < 0.5:
        words.append(str(rng.choice(["black", "new", "pro", "kit"])))
    return " ".join(words)


def synthetic_tables(n: int = 80, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """tableA (n rows), tableB (n matches in shuffled order + n/2 distractors), train, valid pair frames."""
    rng = np.random.default_rng(seed)
    titles, brands, prices = [], [], []
    for i in range(n):
        b, w = str(rng.choice(BRANDS)), str(rng.choice(NOUNS))
        titles.append(f"{b} {w} model x{1000 + i} {rng.choice(['series', 'edition', 'plus'])}")
        brands.append(b)
        prices.append(f"{rng.uniform(10, 500):.2f}")
    left = pl.DataFrame({"id": [f"a{i}" for i in range(n)], "title": titles, "brand": brands, "price": prices})
    perm = rng.permutation(n)
    right_titles = [_noisy(rng, titles[i]) for i in perm]
    extra = [f"{rng.choice(BRANDS)} {rng.choice(NOUNS)} model z{5000 + j}" for j in range(n // 2)]
    right = pl.DataFrame({
        "id": [f"b{j}" for j in range(n + n // 2)],
        "title": right_titles + extra,
        "brand": [brands[i] for i in perm] + [str(rng.choice(BRANDS)) for _ in range(n // 2)],
        "price": [f"{float(prices[i]) * rng.uniform(0.95, 1.05):.2f}" for i in perm] + ["" for _ in range(n // 2)],
    })
    partner = {int(i): j for j, i in enumerate(perm)}
    rows = []
    for i in range(n):
        rows.append((f"a{i}", f"b{partner[i]}", 1))
        for _ in range(3):
            j = int(rng.integers(0, n + n // 2))
            if j != partner[i]:
                rows.append((f"a{i}", f"b{j}", 0))
    pairs = pl.DataFrame(rows, schema=["ltable_id", "rtable_id", "label"], orient="row")
    cut = np.arange(pairs.height) < int(0.6 * pairs.height)
    return left, right, pairs.filter(pl.Series(cut)), pairs.filter(pl.Series(~cut))
