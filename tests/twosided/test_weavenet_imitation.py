"""Issue 13: imitation targets and loss, both L_m forms, the training objectives and model sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.twosided.costs import blocking_pairs_batch, costs_batch
from crossmatch.twosided.generators import generate
from crossmatch.twosided.instance import Instance, ranks_from_satisfaction
from crossmatch.twosided.power_balance import power_balance_many
from crossmatch.twosided.weavenet.checkpoints import (
    ANY,
    load_models,
    members,
    model_for,
    model_set,
    size_key,
    split_key,
)
from crossmatch.twosided.weavenet.imitation import imitation_loss, teacher_matchings
from crossmatch.twosided.weavenet.losses import (
    matrix_constraint_loss,
    matrix_constraint_loss_code,
    total_loss,
)
from crossmatch.twosided.weavenet.model import WeaveNetConfig, dual_softmax
from crossmatch.twosided.weavenet.train import TrainConfig, checkpoint, train


def _ranks(sa: np.ndarray, sb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (ranks_from_satisfaction(sa) - 1).astype(np.int32), (ranks_from_satisfaction(sb) - 1).astype(np.int32)


@pytest.mark.parametrize("dist", ["UU", "DD", "UD", "Lib"])
def test_best_stable_teacher_is_stable_and_never_worse_than_power_balance(dist: str) -> None:
    sa, sb = generate(dist, 12, 30, np.random.default_rng(1))
    ra, rb = _ranks(sa, sb)
    best = teacher_matchings(sa, sb, teacher="best_stable", target="seq")
    pb = teacher_matchings(sa, sb, teacher="power_balance", target="seq")
    assert (blocking_pairs_batch(ra, rb, best) == 0).all() and (blocking_pairs_batch(ra, rb, pb) == 0).all()
    assert all(sorted(row) == list(range(12)) for row in best.tolist())  # perfect matchings
    c_best, c_pb = costs_batch(ra, rb, best)["seq"], costs_batch(ra, rb, pb)["seq"]
    assert (c_best <= c_pb).all()
    assert (c_best < c_pb).any() or dist == "UD"  # PolyMin / GS beat PowerBalance on some instances
    expect = np.stack([power_balance_many(Instance(ra[k], rb[k]), ("seq",))["seq"] for k in range(30)])
    assert np.array_equal(pb, expect)


def test_teacher_rejects_bad_input() -> None:
    sa, sb = generate("UU", 5, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="teacher"):
        teacher_matchings(sa, sb, teacher="oracle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="square"):
        teacher_matchings(sa[:, :4], sb, teacher="power_balance")


def test_imitation_loss_low_on_the_target_and_symmetric_in_views() -> None:
    target = torch.tensor([[2, 0, 1], [0, 1, 2]])
    onehot = torch.nn.functional.one_hot(target, 3).float()
    good, bad = 20.0 * onehot, 20.0 * onehot.flip(-1)
    assert float(imitation_loss(good, target).max()) < 1e-6
    assert float(imitation_loss(bad, target).min()) > 5.0
    # Column view: transposing logits and inverting the target gives the same loss.
    inv = torch.argsort(target, dim=1)
    logits = torch.randn(2, 3, 3)
    assert torch.allclose(imitation_loss(logits, target), imitation_loss(logits.transpose(1, 2), inv))
    with pytest.raises(ValueError, match="expected logits"):
        imitation_loss(torch.randn(2, 3, 4), target)


def test_code_form_punishes_a_collision_more_than_the_printed_form() -> None:
    """Issue 13: at logit margins of a few units (a trained model's) one partner collision costs ~35× more
    under the code's normed correlation than under the printed cosine form."""
    n = 20
    perm = 5.0 * torch.eye(n)
    collide = perm.clone()
    collide[0] = perm[1]  # a_0 and a_1 both pick b_1; b_0 is picked by nobody
    printed = [float(matrix_constraint_loss(*dual_softmax(x[None]))[0]) for x in (perm, collide)]
    code = [float(matrix_constraint_loss_code(x[None])[0]) for x in (perm, collide)]
    assert printed[1] - printed[0] > 0 and code[1] - code[0] > 10 * (printed[1] - printed[0])
    ma, mb = dual_softmax(collide[None])
    sa = torch.rand(1, n, n)
    assert set(total_loss(ma, mb, sa, sa, "fsm", logits=collide[None], lm_form="printed")) == {"m", "s", "f", "total"}
    with pytest.raises(ValueError, match="lm_form"):
        total_loss(ma, mb, sa, sa, "fsm", logits=collide[None], lm_form="cosine")  # type: ignore[arg-type]


def test_imitation_training_learns_stable_matchings() -> None:
    """A few hundred imitation steps at N = 6 make Hungarian-binarised outputs mostly stable; the
    unsupervised objective with the same budget does not get there (the reason for issue 13)."""
    cfg = WeaveNetConfig(layers=4, dim=16, hidden=32, residual=True, variant="sym")
    common = dict(steps=240, batch_size=16, train_n=(6,), val_n=(6,), val_size=60, val_every=80, lr=3e-3, seed=0,
                  distributions=("UU",), val_binarize="hungarian")
    imit = train(cfg, TrainConfig(objective="imitation", **common))  # type: ignore[arg-type]
    unsup = train(cfg, TrainConfig(objective="unsupervised", **common))  # type: ignore[arg-type]
    first = imit.history[0]["val_stable_rate"]
    assert imit.best_val["stable_rate"] >= 0.8 > first
    assert imit.best_val["stable_rate"] > unsup.best_val["stable_rate"]
    assert "loss_imit" in imit.history[-1] and "loss_m" not in imit.history[-1]
    both = train(cfg, TrainConfig(objective="imitation+unsupervised", unsupervised_weight=0.5,
                                  **{**common, "steps": 4, "val_every": 4}))  # type: ignore[arg-type]
    assert {"loss_imit", "loss_m", "loss_s", "loss_f"} <= set(both.history[-1])


def test_train_config_rejects_unknown_choices() -> None:
    for bad in ({"objective": "fsm"}, {"target": "imitation"}, {"teacher": "x"}, {"lm_form": "cosine"},
                {"val_binarize": "round"}, {"unsupervised_weight": -1.0}, {"val_n": ()}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)  # type: ignore[arg-type]


def test_model_set_roundtrip_and_lookup() -> None:
    cfg = WeaveNetConfig(layers=2, dim=4, hidden=8, residual=False, variant="sym")
    res = train(cfg, TrainConfig(steps=1, train_n=(4,), val_n=(4,), val_size=2, val_every=1, distributions=("UU",)))
    single = checkpoint(cfg, res, {"steps_done": 1})
    bundle = model_set({"UU": single, "DD": single})
    assert sorted(members(bundle)) == ["DD", "UU"] and list(members(single)) == [ANY]
    models = load_models(bundle)
    assert model_for(models, "DD") is models["DD"]
    with pytest.raises(ValueError, match="no WeaveNet model for distribution 'GG'"):
        model_for(models, "GG")
    assert model_for(load_models(single), "GG") is not None
    with pytest.raises(ValueError, match="not a WeaveNet checkpoint"):
        members({"format": "weavenet-set", "models": {"UU": {"config": {}}}})
    with pytest.raises(ValueError, match="at least one"):
        model_set({})


def test_size_specialists_serve_their_size_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 item 3: a set may hold ``<dist>@<N>`` models; the evaluation uses one at N and the
    distribution's own model at every other size."""
    import crossmatch.twosided.tables as tables

    cfg = WeaveNetConfig(layers=2, dim=4, hidden=8, residual=False, variant="sym")
    res = train(cfg, TrainConfig(steps=1, train_n=(4,), val_n=(4,), val_size=2, val_every=1, distributions=("UU",)))
    single = checkpoint(cfg, res, {"steps_done": 1})
    models = load_models(model_set({"UU": single, size_key("UU", 6): single}))
    assert size_key("UU", 6) == "UU@6" and split_key("UU@6") == ("UU", 6) and split_key("UU") == ("UU", None)
    with pytest.raises(ValueError, match="bad WeaveNet model key"):
        split_key("UU@x")
    for bad in ("uu@30", "UU@30@30", "XX"):  # never silently unused
        with pytest.raises(ValueError, match="model key|unknown distribution"):
            members(model_set({"UU": single, bad: single}))
    assert model_for(models, "UU", 6) is models["UU@6"]
    assert model_for(models, "UU", 5) is models["UU"] and model_for(models, "UU") is models["UU"]
    used: dict[int, object] = {}
    real = tables.predict_logits

    def spy(model, sa, sb, device):  # type: ignore[no-untyped-def]
        used[sa.shape[-1]] = model
        return real(model, sa, sb, device)

    monkeypatch.setattr(tables, "predict_logits", spy)
    spec = tables.TablesSpec(distributions=["UU"], sizes=[5, 6], instances=4, workers=1, chunk=4,
                             algorithms=["GS"], binarize="hungarian")
    tables.solve_cells(spec, models, torch.device("cpu"))
    assert used[6] is models["UU@6"] and used[5] is models["UU"]
