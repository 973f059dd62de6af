"""WeaveNet (§3.4–3.7): equivariance, symmetry, losses, binarisation, training and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossmatch.twosided.costs import is_stable
from crossmatch.twosided.gale_shapley import gale_shapley
from crossmatch.twosided.generators import generate
from crossmatch.twosided.instance import Instance
from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.losses import (
    balance_loss,
    envy_tensors,
    fairness_loss,
    matrix_constraint_loss,
    stability_loss,
    total_loss,
)
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig, count_parameters, dual_softmax
from crossmatch.twosided.weavenet.train import TrainConfig, checkpoint, load_model, train


def _batch(n: int = 7, m: int | None = None, b: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    sa, sb = generate("UU", n, b, np.random.default_rng(seed), m=m)
    return torch.tensor(sa, dtype=torch.float32), torch.tensor(sb, dtype=torch.float32)


def _model(variant: str, layers: int = 4) -> WeaveNet:
    torch.manual_seed(0)
    model = WeaveNet(WeaveNetConfig(layers=layers, dim=8, hidden=16, residual=True, variant=variant))  # type: ignore[arg-type]
    # Non-trivial BN running statistics, so eval mode is not the identity normalisation.
    model.train()
    with torch.no_grad():
        for s in range(3):
            model(*_batch(seed=10 + s))
    return model.eval()


@pytest.mark.parametrize("variant", ["sym", "asym"])
def test_permutation_equivariance(variant: str) -> None:
    model = _model(variant)
    sa, sb = _batch(n=6, m=5)
    pa, pb = torch.randperm(6), torch.randperm(5)
    with torch.no_grad():
        out = model(sa, sb)
        out_perm = model(sa[:, pa][:, :, pb], sb[:, pb][:, :, pa])
    assert torch.allclose(out_perm, out[:, pa][:, :, pb], atol=1e-5)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_symmetric_variant_transposes(mode: str) -> None:
    model = _model("sym")
    model.train(mode == "train")
    sa, sb = _batch(n=6)
    with torch.no_grad():
        f_ab = model(sa, sb)
        f_ba = model(sb, sa)
    assert torch.allclose(f_ab, f_ba.transpose(1, 2), atol=1e-5)


def test_asymmetric_variant_distinguishes_sides() -> None:
    model = _model("asym")
    sa, sb = _batch(n=6)
    with torch.no_grad():
        assert not torch.allclose(model(sa, sb), model(sb, sa).transpose(1, 2), atol=1e-3)


def test_parameter_count_matches_the_paper() -> None:
    cfg = WeaveNetConfig(layers=60, dim=32, hidden=64, residual=True, variant="sym")
    assert count_parameters(WeaveNet(cfg)) == pytest.approx(493_000, rel=0.01)  # Table 6: WN-60 493k


def test_losses_vanish_on_a_stable_doubly_stochastic_input() -> None:
    sa_np, sb_np = generate("Lib", 8, 1, np.random.default_rng(4))
    inst = Instance.from_scores(sa_np[0], sb_np[0])
    m = gale_shapley(inst, "a")
    assert is_stable(inst, m)
    x = torch.zeros(1, 8, 8)
    x[0, torch.arange(8), torch.as_tensor(m)] = 1.0
    sa, sb = torch.tensor(sa_np, dtype=torch.float32), torch.tensor(sb_np, dtype=torch.float32)
    gaps = envy_tensors(sa, sb)
    assert float(matrix_constraint_loss(x, x.transpose(1, 2))) == pytest.approx(0.0, abs=1e-6)
    assert float(stability_loss(x, gaps)) == pytest.approx(0.0, abs=1e-9)
    # An unstable permutation has positive L_s.
    bad = torch.roll(x, 1, dims=2)
    if not is_stable(inst, np.roll(m, 1)):
        assert float(stability_loss(bad, gaps)) > 0
    # Everyone with their top choice on both sides: L_f = 0 and L_b attains its minimum −1.
    top = torch.ones(1, 3, 3) * 0.1
    top[0, torch.arange(3), torch.arange(3)] = 1.0
    eye = torch.eye(3)[None]
    assert float(fairness_loss(eye, top, top)) == pytest.approx(0.0)
    assert float(balance_loss(eye, top, top)) == pytest.approx(-1.0)
    parts = total_loss(eye, eye, top, top, "fsm", lm_form="printed")
    assert float(parts["total"]) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="needs the logits"):
        total_loss(eye, eye, top, top, "fsm")  # the default L_m is the code form, computed on logits


def test_matrix_constraint_loss_penalises_disagreement() -> None:
    logits = torch.randn(2, 5, 5)
    ma, mb = dual_softmax(logits)
    assert float(matrix_constraint_loss(ma, mb).min()) > 0.0
    with pytest.raises(ValueError, match="objective"):
        total_loss(ma, mb, torch.rand(2, 5, 5), torch.rand(2, 5, 5), "xyz")  # type: ignore[arg-type]


def test_binarize_argmax_and_hungarian() -> None:
    scores = np.array([[[0.9, 0.8], [0.95, 0.1]]])
    assert binarize(scores, "argmax").tolist() == [[0, 0]]  # not one-to-one
    assert binarize(scores, "hungarian").tolist() == [[1, 0]]  # max total weight, one-to-one
    with pytest.raises(ValueError, match="finite"):
        binarize(np.full((1, 2, 2), np.nan), "argmax")


def test_forward_rejects_bad_shapes() -> None:
    model = _model("sym", layers=2)
    with pytest.raises(ValueError, match="expected S_A"):
        model(torch.rand(1, 3, 4), torch.rand(1, 3, 4))


def test_training_selects_on_validation_and_roundtrips() -> None:
    cfg = WeaveNetConfig(layers=2, dim=8, hidden=16, residual=False, variant="asym")
    tc = TrainConfig(steps=30, train_n=(6,), val_n=(6,), val_size=4, val_every=10, lr=1e-3, seed=3)
    res = train(cfg, tc)
    assert res.steps_done == 30 and res.best_step in {0, 10, 20, 30}
    assert [int(r["step"]) for r in res.history] == [0, 10, 20, 30]
    assert res.best_score == min(r["val_score"] for r in res.history)
    assert all(np.isfinite(r["loss_total"]) for r in res.history[1:])
    again = train(cfg, tc)  # same seed, same result on CPU
    assert all(torch.equal(res.state_dict[k], again.state_dict[k]) for k in res.state_dict)
    blk = train(cfg, TrainConfig(steps=10, train_n=(6,), val_n=(6,), val_size=4, val_every=5, seed=3, selection="blocking"))
    assert blk.best_score == min(r["val_hungarian_blocking"] for r in blk.history)
    model = load_model(checkpoint(cfg, res, {"steps_done": 30}))
    with torch.no_grad():
        assert model(*_batch(n=6)).shape == (3, 6, 6)


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []

    class SpyAdam(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", SpyAdam)
    cfg = WeaveNetConfig(layers=2, dim=8, hidden=16, residual=False, variant="sym")
    base = dict(steps=8, train_n=(5,), val_n=(5,), val_size=2, val_every=4, lr=1e-3, seed=1)
    train(cfg, TrainConfig(**base))  # type: ignore[arg-type]
    assert seen == [1e-3] * 8
    seen.clear()
    train(cfg, TrainConfig(**base, lr_schedule="cosine"))  # type: ignore[arg-type]
    expected = [1e-3 * 0.5 * (1 + np.cos(np.pi * t / 8)) for t in range(8)]
    assert np.allclose(seen, expected) and seen[-1] < 0.05 * 1e-3


def test_ema_is_what_validation_sees_and_what_is_kept() -> None:
    cfg = WeaveNetConfig(layers=2, dim=8, hidden=16, residual=False, variant="sym")
    base = dict(steps=12, train_n=(5,), val_n=(5,), val_size=6, val_every=4, lr=3e-2, seed=2, objective="imitation")
    torch.manual_seed(2)
    init = WeaveNet(cfg).state_dict()
    raw = train(cfg, TrainConfig(**base))  # type: ignore[arg-type]
    # torch's average starts at the first update (the weights after step 1); a decay this close to 1 then keeps
    # it there: every later validation sees the same weights and the kept state is them, while the raw weights
    # go on moving. Without the averaged copy being validated and kept, both would move.
    slow = train(cfg, TrainConfig(**base, ema_decay=0.999999))  # type: ignore[arg-type]
    assert slow.history[0]["val_score"] == raw.history[0]["val_score"]
    assert len({round(r["val_score"], 9) for r in slow.history[1:]}) == 1
    assert len({round(r["val_score"], 9) for r in raw.history[1:]}) > 1
    once = train(cfg, TrainConfig(**{**base, "steps": 1, "val_every": 1}, lr_schedule="constant"))  # type: ignore[arg-type]
    kept = max(float((slow.state_dict[k].float() - once.state_dict[k].float()).abs().max()) for k in init if k.endswith("weight"))
    assert once.best_step == 1 and kept < 1e-4
    # BatchNorm statistics are averaged too (use_buffers): the kept ones are step 1's, not the raw model's later ones
    stats = [k for k in init if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.allclose(slow.state_dict[k], once.state_dict[k], atol=1e-4) for k in stats)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")  # type: ignore[arg-type]
