"""MiniLM fine-tuned as a pair classifier on serialised records, Ditto-style (issue 12 §4).

Two forms (``FinetuneConfig.form``), both on the packaged all-MiniLM-L6-v2 transformer, trained with
binary cross-entropy:

* ``cross`` (Ditto's): ``serialise(left) [SEP] serialise(right)`` as one input, mean-pooled, a linear head.
* ``siamese`` (Sentence-BERT's classification objective, Reimers & Gurevych 2019, §3): each record encoded
  alone and mean-pooled as the model was pre-trained (``u``, ``v``), the head reads ``(u, v, |u − v|, u ∘ v,
  cos(u, v))``. It starts from embeddings whose cosine already separates many matches, where the cross form
  must first learn to compare two segments.

Protocol: the epoch and the decision threshold are selected on an inner dev split carved out of *train*
(stratified ``dev_fraction``), never on valid, which is only scored once at the end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from crossmatch.er.encoder import model_path
from crossmatch.er.scorer import best_f1_threshold
from crossmatch.errors import ConfigError


@dataclass(frozen=True)
class FinetuneConfig:
    """The recipe; defaults chosen on Walmart–Amazon's train dev split (2-epoch pilots, dev F1 after epoch 1 / 2):
    cross form lr 3e-5 (an earlier 3-epoch run) 0.35 / 0.67, lr 1e-4 0.31 / 0.46, lr 3e-4 0.33 / 0.38, with head_lr
    3e-3 0.33 / —; siamese lr 1e-4 0.34 / 0.36, with head_lr 3e-3 **0.69 / 0.71** (docs/entity-resolution.md)."""

    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-4
    max_length: int = 128
    dev_fraction: float = 0.1
    pos_weight: float = 1.0
    seed: int = 0
    device: str = "cpu"
    form: Literal["cross", "siamese"] = "siamese"
    head_lr: float | None = 3e-3  # None: lr
    # batches drawn from pools of ``bucket`` batches sorted by length: less padding, the same pairs per epoch
    bucket: int = 50

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.max_length < 8:
            raise ConfigError("er finetune: epochs, batch_size >= 1, lr > 0, max_length >= 8 required")
        if self.head_lr is not None and not self.head_lr > 0:
            raise ConfigError(f"er finetune.head_lr must be > 0 or null, got {self.head_lr}")
        if self.form not in ("cross", "siamese"):
            raise ConfigError(f"er finetune.form must be cross or siamese, got {self.form!r}")
        if self.bucket < 1:
            raise ConfigError(f"er finetune.bucket must be >= 1, got {self.bucket}")
        if not 0.0 < self.dev_fraction < 0.5:
            raise ConfigError(f"er finetune.dev_fraction must be in (0, 0.5), got {self.dev_fraction}")


class PairClassifier(nn.Module):
    """Transformer encoder + mean pooling + linear head → one logit per pair (``form`` cross or siamese)."""

    def __init__(self, form: Literal["cross", "siamese"] = "cross") -> None:
        super().__init__()
        from transformers import AutoModel

        self.form = form
        self.encoder = AutoModel.from_pretrained(model_path())
        h = int(self.encoder.config.hidden_size)
        self.head = nn.Linear(h if form == "cross" else 4 * h + 1, 1)

    def _pool(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, input_ids_b: Tensor | None = None,
                attention_mask_b: Tensor | None = None) -> Tensor:
        u = self._pool(input_ids, attention_mask)
        if self.form == "cross":
            return self.head(u).squeeze(-1)
        if input_ids_b is None or attention_mask_b is None:
            raise ValueError("the siamese form needs the right records' input_ids_b and attention_mask_b")
        v = self._pool(input_ids_b, attention_mask_b)
        cos = nn.functional.cosine_similarity(u, v, dim=-1).unsqueeze(-1)
        return self.head(torch.cat([u, v, (u - v).abs(), u * v, cos], dim=-1)).squeeze(-1)


@dataclass
class FinetunedScorer:
    model: PairClassifier
    tokenizer: object
    config: FinetuneConfig
    threshold: float
    dev_f1: float
    history: list[dict[str, float]]

    @torch.no_grad()
    def predict_proba(self, left: Sequence[str], right: Sequence[str], batch_size: int = 128) -> np.ndarray:
        self.model.eval()
        out = []
        for s in range(0, len(left), batch_size):
            enc = _encode(self.tokenizer, left[s:s + batch_size], right[s:s + batch_size], self.config)
            out.append(torch.sigmoid(self.model(**enc)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


def _encode(tok: object, a: Sequence[str], b: Sequence[str], config: FinetuneConfig) -> dict[str, Tensor]:
    if config.form == "siamese":
        ea, eb = (tok(list(t), truncation=True, max_length=config.max_length, padding=True,  # type: ignore[operator]
                      return_tensors="pt") for t in (a, b))
        return {"input_ids": ea["input_ids"].to(config.device), "attention_mask": ea["attention_mask"].to(config.device),
                "input_ids_b": eb["input_ids"].to(config.device),
                "attention_mask_b": eb["attention_mask"].to(config.device)}
    enc = tok(list(a), list(b), truncation="longest_first", max_length=config.max_length, padding=True,  # type: ignore[operator]
              return_tensors="pt")
    return {"input_ids": enc["input_ids"].to(config.device), "attention_mask": enc["attention_mask"].to(config.device)}


def length_batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, bucket: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of ``order`` with little padding: each pool of ``bucket`` batches is sorted by token length,
    cut into batches, and the batches of all pools shuffled (every index exactly once)."""
    pool = batch_size * bucket
    batches: list[np.ndarray] = []
    for s in range(0, len(order), pool):
        part = order[s:s + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def blend_weight(feature: np.ndarray, encoder: np.ndarray, y: np.ndarray, *,
                 grid: int = 11) -> tuple[float, float, float]:
    """The encoder's weight ``w`` in ``(1 - w) · feature + w · encoder``, its threshold and F1, chosen by F1 on
    labelled pairs the two models did not train on (the inner dev split of train; never valid). Among ties the
    smallest weight wins: the feature scorer is the default, the encoder must earn its share."""
    f, e, t = (np.asarray(a, dtype=np.float64) for a in (feature, encoder, y))
    if not (f.shape == e.shape == t.shape) or f.ndim != 1:
        raise ValueError(f"feature, encoder, y must be 1-d of one length, got {f.shape}, {e.shape}, {t.shape}")
    if grid < 2:
        raise ValueError(f"grid must be >= 2, got {grid}")
    best = (-1.0, 0.0, 0.5)
    for w in np.linspace(0.0, 1.0, grid):
        th, f1 = best_f1_threshold((1 - w) * f + w * e, t)
        if f1 > best[0] + 1e-12:
            best = (f1, float(w), th)
    return best[1], best[2], best[0]


def dev_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Stratified inner dev indices of train (``fraction`` of each class, at least one)."""
    return np.concatenate([rng.choice(np.flatnonzero(y == c), max(1, int(round(fraction * (y == c).sum()))),
                                      replace=False) for c in (0, 1)])


def finetune(left: Sequence[str], right: Sequence[str], labels: np.ndarray, *, config: FinetuneConfig,
             progress: Callable[[str], None] = lambda _: None) -> FinetunedScorer:
    """Train on serialised pairs; keep the epoch with the best F1 on the inner dev split of train."""
    from transformers import AutoTokenizer

    y = np.asarray(labels).astype(np.float32)
    if not (len(left) == len(right) == len(y)):
        raise ValueError(f"left, right, labels must have one length, got {len(left)}, {len(right)}, {len(y)}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dev = dev_split(y, config.dev_fraction, rng)
    train = np.setdiff1d(np.arange(len(y)), dev)
    tok = AutoTokenizer.from_pretrained(model_path())
    lengths = np.array([len(ids) for ids in tok(list(left), list(right), truncation="longest_first",
                                                max_length=config.max_length)["input_ids"]])
    model = PairClassifier(config.form).to(config.device)
    # the head starts from random weights over pre-trained features: it may take a larger step than the encoder
    opt = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": config.lr},
                             {"params": model.head.parameters(), "lr": config.head_lr or config.lr}], weight_decay=0.01)
    steps = config.epochs * math.ceil(len(train) / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.pos_weight, device=config.device))
    best_state, best = None, (-1.0, 0.5)
    history: list[dict[str, float]] = []
    scorer = FinetunedScorer(model, tok, config, 0.5, 0.0, history)
    t0, done = time.time(), 0
    for epoch in range(config.epochs):
        model.train()
        for b in length_batches(rng.permutation(train), lengths, config.batch_size, config.bucket, rng):
            enc = _encode(tok, [left[i] for i in b], [right[i] for i in b], config)
            loss = loss_fn(model(**enc), torch.from_numpy(y[b]).to(config.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if done % 20 == 0:
                eta = (time.time() - t0) / done * (steps - done)
                progress(f"finetune step {done}/{steps}, loss {float(loss.detach()):.4f}, ETA {eta:.0f} s")
        p = scorer.predict_proba([left[i] for i in dev], [right[i] for i in dev])
        th, f1 = best_f1_threshold(p, y[dev])
        history.append({"epoch": epoch + 1, "dev_f1": f1, "threshold": th, "seconds": time.time() - t0})
        progress(f"epoch {epoch + 1}: dev F1 {f1:.4f}")
        if f1 > best[0]:
            best = (f1, th)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    scorer.threshold, scorer.dev_f1 = best[1], best[0]
    return scorer
