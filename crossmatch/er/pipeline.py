"""Entity resolution end to end, as two library calls (issue 12): :func:`~crossmatch.er.candidates.block` and :func:`match`.

Protocol (issue 12 §1): what is tuned — the blocking ``k``, the scorer, its calibration and
threshold — is tuned on ``train`` only (cross-validation inside it); ``valid`` is never seen
before it is scored, and is what the metrics report. With no labels both calls still run:
blocking uses the configured ``k``, matching uses :mod:`crossmatch.er.unsupervised`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crossmatch.er.candidates import swap_candidates
from crossmatch.er.evaluate import (
    end_to_end_bounds,
    end_to_end_estimate,
    labelled_metrics,
    output_metrics,
    pr_curve,
)
from crossmatch.er.features import PairFeaturizer
from crossmatch.er.postprocess import METHODS, select
from crossmatch.er.reference import reference_classifier
from crossmatch.er.scorer import ScorerConfig
from crossmatch.er.selection import grouped_end_to_end_by_method, hard_negatives
from crossmatch.er.tables import Benchmark, positives
from crossmatch.er.token_vocab import choose_token_vocab
from crossmatch.er.unsupervised import TooFewPairs, self_trained_scores, unsupervised_matches
from crossmatch.errors import ConfigError, InputError


def _transform_with_eta(feats: PairFeaturizer, l: np.ndarray, r: np.ndarray, progress: Callable[[str], None], *,
                        chunk: int = 20_000) -> np.ndarray:
    """``feats.transform(l, r)`` in chunks, telling ``progress`` how far and an ETA (the candidates are the long
    featurisation: ~0.2 ms a pair, ~2 ms with a description column)."""
    if len(l) <= chunk:
        return feats.transform(l, r)
    parts, t0 = [], time.perf_counter()
    for s in range(0, len(l), chunk):
        parts.append(feats.transform(l[s:s + chunk], r[s:s + chunk]))
        done = min(s + chunk, len(l))
        left = (time.perf_counter() - t0) / done * (len(l) - done)
        progress(f"features of {len(l):,} candidate pairs: {done:,} done" + (f", ~{left:.0f} s left" if left else ""))
    return np.concatenate(parts)


@dataclass(frozen=True)
class MatchConfig:
    """Scorer and post-processing settings (``mode: auto`` = supervised when train.csv holds at least
    ``scorer.folds`` positive and negative pairs; with fewer the unsupervised rule decides and labels evaluate)."""

    mode: str = "auto"  # auto | supervised | unsupervised
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    postprocess: tuple[str, ...] = METHODS
    # which post-processing writes the output pairs; auto: the best of ``postprocess`` by the train-only
    # end-to-end estimate (selection.grouped_end_to_end_by_method); without labels the rule's own decisions
    output: str = "auto"
    dense_max: int = 400
    context_k: int = 20  # neighbourhood features of the pair scorer (features.PairFeaturizer); 0: off
    context_attributes: bool = True  # neighbourhood per text attribute too, not only per record
    context_codes: bool = False  # and on the code tokens (tokens with a digit): better labelled pairs, worse output
    # the longest prefix of each value and model code found in the other record (features.PairFeaturizer.code_prefix);
    # the scorer's only: the unsupervised rule keeps its own features. On by default, as shipped (chosen on train:
    # pipelines/real/params.yaml), so the library facade (crossmatch.api) scores as the pipeline does
    code_prefix: bool = True
    # token-presence features (features.PairFeaturizer) for the N most frequent tokens: the N of this grid with
    # the best train out-of-fold F1 (choose_token_vocab); one value: that N
    token_vocab: tuple[int, ...] = (0,)
    token_text_only: bool = False  # the vocabulary from the text attributes only (no price / year digits)
    fuzzy_max_chars: int = 256  # leading characters of a value the rapidfuzz features read (features.PairFeaturizer)
    token_choice_seeds: int = 1  # fold splits averaged per size by choose_token_vocab
    token_min_gain: float = 0.0  # train OOF F1 a larger vocabulary must gain to be chosen
    # per record of the grouping table (the smaller; oriented) with a train positive, this many of its most similar
    # blocked candidates that are not train
    # pairs join the scorer's training pairs as negatives (selection.hard_negatives); 0: the labelled pairs only
    hard_negatives: int = 0
    self_training_rounds: int = 1  # unsupervised rule: pseudo-label rounds (0: the mixture rule alone)
    confident_quantile: float = 0.0  # share of the mixture's matches that are not pseudo-positives
    # unsupervised rule: pseudo-labelled pairs keep their out-of-fold scores (unsupervised.self_trained_scores)
    self_training_cross_fit: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "supervised", "unsupervised"):
            raise ConfigError(f"er match.mode must be auto | supervised | unsupervised, got {self.mode!r}")
        if self.context_k < 0:
            raise ConfigError(f"er match.context_k must be >= 0, got {self.context_k}")
        if isinstance(self.fuzzy_max_chars, bool) or not isinstance(self.fuzzy_max_chars, int) or \
                self.fuzzy_max_chars < 1:
            raise ConfigError(f"er match.fuzzy_max_chars must be an integer >= 1, got {self.fuzzy_max_chars!r}")
        if not isinstance(self.token_vocab, tuple) or not self.token_vocab or \
                any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in self.token_vocab):
            raise ConfigError(f"er match.token_vocab must list sizes >= 0, got {list(self.token_vocab)}")
        if self.token_choice_seeds < 1 or not 0.0 <= self.token_min_gain < 1.0:
            raise ConfigError(f"er match: token_choice_seeds >= 1 and 0 <= token_min_gain < 1 required, got "
                              f"{self.token_choice_seeds} and {self.token_min_gain}")
        if isinstance(self.hard_negatives, bool) or not isinstance(self.hard_negatives, int) or self.hard_negatives < 0:
            raise ConfigError(f"er match.hard_negatives must be an integer >= 0, got {self.hard_negatives!r}")
        if self.self_training_rounds < 0 or not 0.0 <= self.confident_quantile < 1.0:
            raise ConfigError("er match: self_training_rounds >= 0 and 0 <= confident_quantile < 1 required")
        if not self.postprocess:
            raise ConfigError("er match.postprocess must list at least one method")
        bad = [m for m in self.postprocess if m not in METHODS] + \
            ([self.output] if self.output not in (*METHODS, "auto") else [])
        if bad:
            raise ConfigError(f"er match: unknown post-processing {bad}; known: {list(METHODS)}")


@dataclass(frozen=True)
class MatchResult:
    pairs: pl.DataFrame  # l, r, probability, decision (the chosen output), in_output per method
    metrics: dict[str, Any]
    pr: pl.DataFrame | None  # precision-recall curve of the scorer on valid


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in d.items()}


def choose_output(feats: PairFeaturizer, bench: Benchmark, cands: pl.DataFrame, config: MatchConfig, *,
                  train_features: np.ndarray | None = None, cand_features: np.ndarray | None = None,
                  hard: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[str, dict[str, dict[str, float]]]:
    """``output: auto``: the post-processing of ``config.postprocess`` with the best train-only end-to-end F1
    over the blocked candidates (:func:`crossmatch.er.selection.grouped_end_to_end_by_method`; ties: the
    earlier one). The labelled-pair figures cannot choose it: they never see the candidates nobody labelled.
    With positives for fewer than ``4 × folds`` records of the grouping table (``folds`` of the scorer), or where a fold leaves
    its scorer too few pairs to fit: ``threshold``, and no estimates."""
    assert bench.train is not None
    folds = config.scorer.folds
    if len({a for a, _ in positives(bench.train)}) < 4 * folds:  # too few labelled records to hold some out
        return "threshold", {}
    try:
        est = grouped_end_to_end_by_method(feats, bench, cands, methods=tuple(config.postprocess),
                                           scorer=config.scorer, folds=folds, seed=config.seed,
                                           dense_max=config.dense_max, train_features=train_features,
                                           cand_features=cand_features, hard=hard)
    except ConfigError:  # a fold's training pairs lack positives or negatives for the scorer's own folds
        return "threshold", {}
    best = max(config.postprocess, key=lambda m: (est[m]["f1"], -config.postprocess.index(m)))
    return best, {m: _rounded(v) for m, v in est.items()}


def _estimate(out: set[tuple[int, int]], truth: set[tuple[int, int]], labelled: set[tuple[int, int]],
              bench: Benchmark, withheld_positives: int, valid: dict[str, float] | None) -> dict[str, Any]:
    """``{"end_to_end_estimate": ...}`` where a withheld split's positives are known and valid has positives;
    ``valid``: the output's unrounded labelled-pair metrics on valid (its recall drives the estimate)."""
    if not withheld_positives or valid is None or bench.valid is None or bench.test is not None:
        return {}  # (with a test.csv its positives are in the truth already: nothing is withheld)
    n_valid = int(bench.valid.get_column("label").sum())
    if not n_valid:
        return {}
    return {"end_to_end_estimate": _rounded(end_to_end_estimate(
        out, truth, labelled, withheld_positives=withheld_positives, valid_recall=valid["recall"],
        valid_positives=n_valid))}


def oriented(bench: Benchmark) -> Benchmark:
    """``bench`` as :func:`match` groups it: the smaller table on the left (the left on a tie), so every step that
    groups by record groups by the smaller table's records. Scripts that call the grouped steps
    (:mod:`crossmatch.er.selection`, :mod:`crossmatch.er.unsupervised`) directly orient first, as ``match`` does."""
    return bench.swapped() if bench.right.height < bench.left.height else bench


def match(bench: Benchmark, cands: pl.DataFrame, *, config: MatchConfig,
          embeddings: tuple[np.ndarray, np.ndarray] | None = None, withheld_positives: int = 0,
          progress: Callable[[str], None] = lambda _: None) -> MatchResult:
    """Score the candidates, decide match / no match, post-process; evaluate on valid (and test) when labelled.

    A labelled split is scored pair by pair (the DeepMatcher / Magellan protocol: its pairs outside the candidates
    join the pool with no blocking similarity) and reported; only train's labels choose anything, so a ``test``
    split changes no choice — only the pool's one-to-one post-processings see its extra pairs, as they see valid's.

    ``withheld_positives``: the published number of positives of a split withheld here (a benchmark's test
    split); with valid labels, each output's end-to-end figure is also estimated against all labelled positives
    (:func:`crossmatch.er.evaluate.end_to_end_estimate`, ``end_to_end_estimate`` in the metrics).

    What is grouped by record — the output choice's folds, the unsupervised rule's self-training, the hard
    negatives — is grouped by the records of the **smaller** table (the left on a tie): the benchmark is matched
    with its tables swapped when the right one is smaller and the pairs are swapped back, so the result does not
    depend on which table the user called A (as the blocking, :mod:`crossmatch.er.candidates`)."""
    if oriented(bench) is bench:
        res = _match(bench, cands, config=config, embeddings=embeddings, withheld_positives=withheld_positives,
                     progress=progress)
        return MatchResult(res.pairs, {**res.metrics, "grouped_by": "left"}, res.pr)
    res = _match(bench.swapped(), swap_candidates(cands), config=config,
                 embeddings=None if embeddings is None else (embeddings[1], embeddings[0]),
                 withheld_positives=withheld_positives, progress=progress)
    return MatchResult(swap_candidates(res.pairs), {**res.metrics, "grouped_by": "right"}, res.pr)


def _match(bench: Benchmark, cands: pl.DataFrame, *, config: MatchConfig,
           embeddings: tuple[np.ndarray, np.ndarray] | None, withheld_positives: int,
           progress: Callable[[str], None]) -> MatchResult:
    """:func:`match` with the left table's records as the groups."""
    if withheld_positives < 0:
        raise ConfigError(f"withheld_positives must be >= 0, got {withheld_positives}")
    if config.mode == "supervised" and not bench.has_labels:
        raise ConfigError("er match.mode is 'supervised' but there is no labelled training pair (train.csv)")
    n_pos = int(bench.train.get_column("label").sum()) if bench.train is not None else 0
    n_neg = (bench.train.height if bench.train is not None else 0) - n_pos
    # auto: a scorer's folds need `folds` positives and negatives; with fewer the labels only evaluate
    few = bench.has_labels and min(n_pos, n_neg) < config.scorer.folds
    supervised = config.mode == "supervised" or (config.mode == "auto" and bench.has_labels and not few)
    splits = bench.evaluation_splits()  # valid, and test where a benchmark ships it: scored, never read by a choice
    # a split with no labelled positive has no recall or F1: its pairs join the pool, no figure is made up for it
    scored = {name: f for name, f in splits.items() if int(f.get_column("label").sum())}
    frames = [f for f in (bench.train, *splits.values()) if f is not None]
    truth = set().union(*(positives(f) for f in frames))
    labelled = {(a, b) for f in frames for a, b in zip(f.get_column("l").to_list(), f.get_column("r").to_list(),
                                                        strict=True)}
    pool = cands.select("l", "r", "similarity")
    if splits:  # their pairs are scored too (the labelled-pair protocol); never their labels
        # unique: a pair labelled twice must be one candidate (the one-to-one solvers need that)
        extra = pl.concat([f.select("l", "r") for f in splits.values()]).unique().join(
            pool, on=["l", "r"], how="anti").with_columns(pl.lit(float("nan")).alias("similarity"))
        pool = pl.concat([pool, extra]).sort("l", "r")
    l, r = pool.get_column("l").to_numpy(), pool.get_column("r").to_numpy()
    metrics: dict[str, Any] = {"mode": "supervised" if supervised else "unsupervised", "pool_pairs": pool.height}
    if unscored := sorted(set(splits) - set(scored)):
        metrics["unscored_splits"] = {name: "no labelled positive: recall and F1 are undefined" for name in unscored}
    if overlap := bench.train_overlap():  # a split sharing pairs with train: its figures are partly in-sample
        metrics["train_overlap"] = overlap
    if few and not supervised:
        metrics["mode_reason"] = (f"train.csv has {n_pos} positive and {n_neg} negative pairs, fewer than the "
                                  f"scorer's {config.scorer.folds} folds need: unsupervised rule, labels only evaluate")
    progress("features")
    # without labels only the self-training rule reads features, and never the neighbourhood or token ones
    feats = PairFeaturizer(bench, embeddings=embeddings, context_k=config.context_k if supervised else 0,
                           context_attributes=config.context_attributes, context_codes=config.context_codes,
                           token_vocab=max(config.token_vocab) if supervised else 0,
                           token_text_only=config.token_text_only, fuzzy_max_chars=config.fuzzy_max_chars,
                           code_prefix=config.code_prefix and supervised)
    cols: dict[str, Any] = {"l": l, "r": r}
    closure: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    pr = None
    Xpool: np.ndarray | None = None
    if supervised:
        assert bench.train is not None
        Xtr = feats.transform(bench.train.get_column("l").to_numpy(), bench.train.get_column("r").to_numpy())
        hl, hr = hard_negatives(cands, bench.train, config.hard_negatives)
        Xh = feats.transform(hl, hr) if len(hl) else np.zeros((0, Xtr.shape[1]))
        ytr = np.r_[bench.train.get_column("label").to_numpy(), np.zeros(len(hl), dtype=np.int64)]
        progress("scorer")
        keep, scorer, tokens = choose_token_vocab(np.r_[Xtr, Xh], ytr, feats, config.token_vocab, config.scorer,
                                                  seeds=config.token_choice_seeds, min_gain=config.token_min_gain)
        pool_names = [feats.names[i] for i in keep]  # the columns of Xpool: the chosen vocabulary's tokens only
        Xtr, Xh = Xtr[:, keep], Xh[:, keep]
        Xpool = _transform_with_eta(feats, l, r, progress)[:, keep]
        prob = scorer.predict_proba(Xpool)
        metrics["scorer"] = {"threshold": scorer.threshold, "oof_f1_train": scorer.oof_f1,
                             "features": len(keep), "train_pairs": int(bench.train.height), "token_vocab": tokens,
                             "hard_negatives": {"per_record": config.hard_negatives, "pairs": len(hl)}}
        for split, frame in scored.items():
            pv = scorer.predict_proba(feats.transform(frame.get_column("l").to_numpy(),
                                                      frame.get_column("r").to_numpy())[:, keep])
            yv = frame.get_column("label").to_numpy()
            metrics["scorer"][split] = _rounded(labelled_metrics(pv >= scorer.threshold, yv))
            metrics["scorer"][f"{split}_at_0.5"] = _rounded(labelled_metrics(pv >= 0.5, yv))
            # the curve of the reported split: test where present, else valid
            pr, metrics["scorer"]["pr_split"] = pr_curve(pv, yv), split
        cols["probability"] = prob
        if scored:  # the floor the scorer is reported against, trained on train alone
            progress("reference classifier")
            metrics["reference"] = reference_classifier(bench, scored, seed=config.scorer.seed,
                                                        fuzzy_max_chars=config.fuzzy_max_chars)
        progress("post-processing")
        # an output named outside `postprocess` is evaluated too: its figures and file rows are then the ones written
        evaluated = (*config.postprocess, *([config.output] if config.output not in (*config.postprocess, "auto") else []))
        for method in evaluated:
            sel = select(l, r, prob, method=method, threshold=scorer.threshold, dense_max=config.dense_max)
            out = sel.pairs(l, r)
            entry: dict[str, Any] = {"pairs": len(out), "solvers": sel.solvers}
            per_split = {split: output_metrics(out, frame) for split, frame in scored.items()}
            entry |= {split: _rounded(m) for split, m in per_split.items()}
            entry["end_to_end"] = _rounded(end_to_end_bounds(out, truth, labelled))
            entry |= _estimate(out, truth, labelled, bench, withheld_positives, per_split.get("valid"))
            metrics.setdefault("postprocess", {})[method] = entry
            cols[f"in_{method}"] = np.isin(np.arange(len(l)), sel.keep)
            if sel.extra:  # clusters: closure pairs that are no candidates, scored like the pool for the file
                el, er_ = (np.asarray(v, dtype=np.int64) for v in zip(*sorted(sel.extra), strict=True))
                closure[method] = (el, er_, scorer.predict_proba(feats.transform(el, er_)[:, keep]))
        output = config.output
        if output == "auto":
            progress("output choice")
            # the pool's features, in the candidates' own order (the pool is sorted and holds valid pairs too)
            at = cands.select("l", "r").join(pool.select("l", "r").with_row_index("i"), on=["l", "r"], how="left",
                                             maintain_order="left")
            output, estimates = choose_output(feats, bench, cands, config, train_features=Xtr,
                                              cand_features=Xpool[at.get_column("i").to_numpy()], hard=(Xh, hl))
            metrics["output_choice"] = {"chosen": output, "train_end_to_end": estimates}
        decision = cols[f"in_{output}"]
        metrics["output"] = output
    # the unsupervised rule always runs: it is the default without labels and a baseline with them
    progress("unsupervised rule")
    idx = np.flatnonzero(np.isfinite(pool.get_column("similarity").to_numpy()))
    sim = pool.get_column("similarity").to_numpy()[idx]
    try:
        kept, mix = unsupervised_matches(l[idx], r[idx], sim, seed=config.seed)
    except TooFewPairs as exc:
        if not supervised:
            raise InputError(f"{exc}: the unsupervised rule cannot set a threshold; label some pairs (train.csv) "
                             "or match larger tables") from None
        metrics["unsupervised_skipped"] = str(exc)  # a baseline only, here: the scorer's output stands
        return _result(cols, decision, metrics, pr, closure)
    variants = {"unsupervised_mixture": (idx[kept], mix.threshold)}
    uscore = sim
    trained = None
    if config.self_training_rounds:
        if Xpool is not None:
            X, names = Xpool[idx], pool_names
        else:
            X = feats.transform(l[idx], r[idx])
            names = feats.names
        # the neighbourhood features re-state the similarity ranks the pseudo-labels are drawn from: with
        # them, self-training learns its own labelling rule back instead of what else separates the pairs;
        # the token and code-prefix ones are left out too, so the rule is the same with and without labels
        drop = feats.context_names | feats.token_names | feats.code_names
        X = X[:, [i for i, n in enumerate(names) if n not in drop]]
        trained = self_trained_scores(X, l[idx], r[idx], sim, rounds=config.self_training_rounds,
                                      confident_quantile=config.confident_quantile,
                                      cross_fit=config.self_training_cross_fit, seed=config.seed)
    if trained is not None:
        uscore, uth, _ = trained
        variants["unsupervised"] = (idx[uscore >= uth], uth)
    else:  # not asked for, or too few pseudo-labels: the mixture rule decides (recorded below)
        variants["unsupervised"] = variants["unsupervised_mixture"]
    for name, (chosen, th) in variants.items():
        out_u = set(zip(l[chosen].tolist(), r[chosen].tolist(), strict=True))
        # Rounded: the mixture's EM differs in the last digits between BLAS builds, and metrics are compared
        # across machines (the decisions above use the unrounded values).
        row: dict[str, Any] = {"pairs": len(out_u), "threshold": round(float(th), 6),
                               "mixture_threshold": round(mix.threshold, 6),
                               "mixture_means": [round(m, 6) for m in mix.means],
                               "mixture_weights": [round(w, 6) for w in mix.weights],
                               "self_training_rounds": config.self_training_rounds if name == "unsupervised" and trained else 0}
        if truth:
            row["end_to_end"] = _rounded(end_to_end_bounds(out_u, truth, labelled))
        split_metrics = {split: output_metrics(out_u, frame)
                         for split, frame in (("train", bench.train), *scored.items())
                         if frame is not None and int(frame.get_column("label").sum())}
        row |= {split: _rounded(m) for split, m in split_metrics.items()}
        row |= _estimate(out_u, truth, labelled, bench, withheld_positives, split_metrics.get("valid"))
        metrics[name] = row
    unsup = np.isin(np.arange(len(l)), variants["unsupervised"][0])
    if not supervised:
        prob_u = np.zeros(len(l))
        prob_u[idx] = uscore
        cols["probability"] = prob_u
        decision = unsup
    return _result(cols, decision, metrics, pr, closure)


def _result(cols: dict[str, Any], decision: np.ndarray, metrics: dict[str, Any], pr: pl.DataFrame | None,
            closure: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> MatchResult:
    cols["decision"] = decision
    pairs = pl.DataFrame(cols)
    if closure:
        pairs = _with_closure(pairs, closure, metrics.get("output"))
    metrics["output_pairs"] = int(pairs.get_column("decision").sum())
    return MatchResult(pairs, metrics, pr)


def _with_closure(pairs: pl.DataFrame, closure: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  output: str | None) -> pl.DataFrame:
    """``pairs`` plus the pairs a post-processing adds beyond the pool (the ``clusters`` closure), so that each
    ``in_<method>`` column, and ``decision`` where that method is the output, holds exactly the pair set its
    metrics judge; sorted by ``l, r`` like the pool."""
    flags = [c for c in pairs.columns if c.startswith("in_")]
    extra = [pl.DataFrame({"l": el, "r": er_, "probability": pe, "decision": np.full(len(el), method == output),
                           **{c: np.full(len(el), c == f"in_{method}") for c in flags}}).select(pairs.columns)
             for method, (el, er_, pe) in closure.items()]
    if len(closure) > 1:  # only clusters adds pairs; two methods could add the same pair twice
        raise ValueError(f"more than one post-processing adds pairs beyond the pool: {sorted(closure)}")
    return pl.concat([pairs, *extra], how="vertical_relaxed").sort("l", "r")
