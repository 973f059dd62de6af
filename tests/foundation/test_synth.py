"""The synthetic world: deterministic, no shared ids, planted truth with the promised structure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crossmatch.errors import ConfigError
from crossmatch.synth import PRESETS, generate_world, make_config
from crossmatch.synth.taxonomy import is_bipoly, star_taxonomies


@pytest.fixture(scope="module")
def world():
    return generate_world(make_config("tiny", seed=11))


def test_same_seed_same_world_and_other_seed_differs():
    a = generate_world(make_config("tiny", seed=5))
    b = generate_world(make_config("tiny", seed=5))
    c = generate_world(make_config("tiny", seed=6))
    assert a.logs.equals(b.logs)
    assert all(a.items[s].equals(b.items[s]) for s in a.items)
    assert a.fine_truth.equals(b.fine_truth)
    assert not a.logs.equals(c.logs)


def _openblas_kernels() -> list[str]:
    """The OpenBLAS kernels this machine can be forced to (empty without numpy on OpenBLAS or an x86 CPU): a forced
    kernel the CPU cannot run dies of an illegal instruction, so only those its flags allow."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text() if cpuinfo.is_file() else ""
    if "openblas" not in str(blas.get("name", "")).lower() or (" sse3" not in flags and " pni" not in flags):
        return []
    return ["Prescott"] + ["Haswell"] * (" avx2" in flags) + ["SkylakeX"] * (" avx512f" in flags)


KERNELS = _openblas_kernels()


@pytest.mark.skipif(len(KERNELS) < 2, reason="OPENBLAS_CORETYPE needs numpy on OpenBLAS and an x86 CPU with two kernels")
def test_same_world_bytes_under_every_blas_kernel(tmp_path: Path) -> None:
    """OpenBLAS picks a kernel per CPU, and a matrix product's last bits differ between kernels: the world
    (feature columns included) must be the same bytes on every machine, else every stage after it differs."""
    root = Path(__file__).resolve().parents[2]
    code = ("import hashlib, sys; from crossmatch.synth import generate_world, make_config; "
            "w = generate_world(make_config('tiny', seed=3)); "
            "h = hashlib.md5(w.logs.write_csv().encode()); "
            "[h.update(w.items[s].write_csv(float_precision=17).encode()) for s in sorted(w.items)]; print(h.hexdigest())")
    digests = set()
    for kernel in KERNELS:
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_sources_share_no_ids(world):
    users = world.logs.group_by("source").agg(pl.col("user_id").unique())
    sets = [set(u) for u in users.get_column("user_id").to_list()]
    assert all(not (x & y) for i, x in enumerate(sets) for y in sets[i + 1 :])
    items = [set(f.get_column("item_id").to_list()) for f in world.items.values()]
    assert all(not (x & y) for i, x in enumerate(items) for y in items[i + 1 :])


def test_sources_have_different_feature_columns(world):
    widths = {s: len([c for c in f.columns if c.startswith(("cat_", "num_"))]) for s, f in world.items.items()}
    layouts = {s: tuple(c for c in f.columns if c.startswith(("cat_", "num_"))) for s, f in world.items.items()}
    assert len(set(layouts.values())) == len(layouts)
    assert min(widths.values()) >= 1


def test_one_source_is_about_ten_times_sparser():
    w = generate_world(make_config("default", seed=2))
    events = dict(w.logs.group_by("source").len().iter_rows())
    per_item = {s: events[s] / w.items[s].height for s in events}
    assert 6.0 < per_item["alpha"] / per_item["gamma"] < 16.0
    assert 6.0 < per_item["beta"] / per_item["gamma"] < 16.0


def test_every_coarse_category_in_every_source(world):
    cats = set(world.categories.get_column("category").to_list())
    for f in world.items.values():
        assert set(f.get_column("category").to_list()) == cats


def test_fine_truth_is_a_bidirectional_poly_matching_for_the_first_pair():
    w = generate_world(make_config("default", seed=4))
    pair = w.fine_truth.filter((pl.col("source_a") == "alpha") & (pl.col("source_b") == "beta"))
    pairs = set(zip(pair.get_column("fine_a").to_list(), pair.get_column("fine_b").to_list(), strict=True))
    assert is_bipoly(pairs)
    deg_a = pair.group_by("fine_a").len().get_column("len")
    deg_b = pair.group_by("fine_b").len().get_column("len")
    # Both directions of one-to-many occur: a fine category of either source can split.
    assert deg_a.max() > 1 and deg_b.max() > 1
    for source, col in (("alpha", "fine_a"), ("beta", "fine_b")):
        with_items = set(w.items[source].get_column("fine_category").to_list())
        assert set(pair.get_column(col).to_list()) <= with_items
        listed = set(w.taxonomy.filter(pl.col("source") == source).get_column("fine_category").to_list())
        assert listed == with_items  # no fine category without items


def test_star_taxonomies_property():
    rng = np.random.default_rng(0)
    for _ in range(20):
        fa, fb = star_taxonomies(rng, 3, 12, 3.0, 3)
        assert is_bipoly(set(zip(fa.tolist(), fb.tolist(), strict=True)))


def test_product_truth_is_one_to_one_on_shared_concepts(world):
    t = world.product_truth.filter((pl.col("source_a") == "alpha") & (pl.col("source_b") == "beta"))
    assert t.get_column("item_a").n_unique() == t.height == t.get_column("item_b").n_unique()
    concepts = world.concepts
    ca = dict(concepts.filter(pl.col("source") == "alpha").select("item_id", "concept").iter_rows())
    cb = dict(concepts.filter(pl.col("source") == "beta").select("item_id", "concept").iter_rows())
    assert all(ca[a] == cb[b] for a, b in t.select("item_a", "item_b").iter_rows())


def test_titles_of_matching_items_share_more_words_than_random_pairs():
    w = generate_world(make_config("default", seed=1))
    t = w.product_truth.filter((pl.col("source_a") == "alpha") & (pl.col("source_b") == "beta"))
    ta = dict(w.items["alpha"].select("item_id", "title").iter_rows())
    tb = dict(w.items["beta"].select("item_id", "title").iter_rows())

    def jac(x: str, y: str) -> float:
        a, b = set(x.split()), set(y.split())
        return len(a & b) / len(a | b)

    true_sim = np.mean([jac(ta[a], tb[b]) for a, b in t.select("item_a", "item_b").iter_rows()])
    rng = np.random.default_rng(0)
    la, lb = list(ta.values()), list(tb.values())
    rand_sim = np.mean([jac(la[i], lb[j]) for i, j in rng.integers(0, [len(la), len(lb)], size=(500, 2))])
    assert true_sim > 0.2 > rand_sim * 3


def test_logs_schema_and_sessions(world):
    assert world.logs.columns == ["source", "user_id", "item_id", "timestamp", "weight", "category"]
    assert world.logs.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert (world.logs.get_column("weight") > 0).all()


def test_large_preset_has_at_least_ten_million_events():
    cfg = PRESETS["large"]
    expected = sum(cfg.users_per_source) * cfg.sessions_per_user * cfg.events_per_session
    assert expected >= 10_000_000


@pytest.mark.parametrize(
    ("preset", "overrides", "fragment"),
    [
        ("huge", {}, "unknown preset 'huge'"),
        ("tiny", {"n_users": 3}, "unknown override(s) ['n_users']"),
        ("tiny", {"users_per_source": [5, 5]}, "'users_per_source' has 2 entries but there are 3 sources"),
        ("tiny", {"concept_coverage": 1.5}, "'concept_coverage' must lie in [0, 1]"),
        ("tiny", {"sources": ["a", "a", "b"]}, "source names must be unique"),
    ],
)
def test_bad_config(preset, overrides, fragment):
    with pytest.raises(ConfigError) as info:
        make_config(preset, 0, overrides)
    assert fragment in str(info.value)
