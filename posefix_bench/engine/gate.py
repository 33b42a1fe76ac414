"""The refinement gate: per keypoint, keep the refined position only where it is expected to improve the input.

Why: a refiner trained on one kind of input (synthesised errors on sandbox scenes) can break good keypoints of
another (a strong estimator, real images): PoseFix's users report AP losses when refining strong inputs
(PoseFix_RELEASE issues #18 and #23). The gate is a decision per keypoint, taken from what is there at inference
(:class:`KeypointEvidence`):

- the refiner's own confidence: the softmax mass within 1.5 output-grid pixels of its decoded point (``ref_conf``,
  :func:`posefix_bench.codecs.heatmap.peak_mass`), and its mean over the person (a pose whose heatmaps are all
  diffuse is one the refiner does not recognise);
- the refiner's mass around the *input* keypoint (``input_mass``): where it is comparable to ``ref_conf`` the
  refiner does not contradict the input;
- the input keypoint's confidence (``in_conf``, clipped to [0, 1]);
- the move in OKS units, ``move = d**2 / (2 s**2 k_j**2)`` (= -ln KS of the move; :mod:`posefix_bench.codecs.oks`,
  k_j = 2 sigma_j of the schema), d the distance between input and refined point in crop pixels and s**2 the
  person's box area in crop pixels (the crop is the box enlarged by :data:`CROP_ENLARGEMENT`).

Model: logistic regression on the standardised features of :data:`FEATURES`, ``p = sigmoid(w0 + w . z)``, fitted
by iteratively reweighted least squares with a ridge penalty, labels ``KS(refined) > KS(input)`` against the ground
truth and sample weights ``|KS(refined) - KS(input)|``: the weighted log loss's Bayes decision at p = 0.5 is
"accept where the expected KS change is positive", the quantity OKS (and so COCO AP) averages. The threshold is
then chosen on the calibration data for the objective of :mod:`posefix_bench.engine.calibrate`. A keypoint is
accepted where ``p >= threshold`` (and it was refined at all: input keypoint predicted, pose refined).

Shape legend: N poses, K keypoints, M rows (keypoints), F features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from posefix_bench.errors import PosefixError

__all__ = [
    "GATE_FORMAT", "FEATURES", "CROP_ENLARGEMENT", "KeypointEvidence", "Gate", "feature_matrix", "fit_logistic",
    "person_area_in_crop",
]  # fmt: skip

GATE_FORMAT = "posefix-bench/gate/v1"
FEATURES = (
    "ref_logit",         # logit of the refiner's peak mass
    "person_ref_logit",  # its mean over the person's refined keypoints
    "in_conf",           # input keypoint confidence, clipped to [0, 1]
    "move",              # log(1 + d^2 / (2 s^2 k^2)): the move in OKS units
    "agreement",         # log((input_mass + eps) / (ref_conf + eps)): refiner mass at the input vs at its output
    "ref_logit*move",
    "in_conf*move",
)
# box around the person -> crop: the input keypoints' box x 1.2 then the top-down padding 1.25 (engine.refine);
# a record's bbox only the padding
CROP_ENLARGEMENT = {"keypoints": 1.2 * 1.25, "bbox": 1.25}
_EPS_P = 1e-4  # logit clipping
_EPS_MASS = 1e-3  # agreement smoothing


def person_area_in_crop(input_size: tuple[int, int], box: str) -> float:
    """s**2: the person box's area in crop pixels, (W * H) / enlargement**2, for a (W, H) crop made with ``box``."""
    try:
        e = CROP_ENLARGEMENT[box]
    except KeyError:
        raise PosefixError(f"gate: unknown crop box {box!r} (known: {', '.join(CROP_ENLARGEMENT)})") from None
    return float(input_size[0]) * float(input_size[1]) / e**2


@dataclass
class KeypointEvidence:
    """What the gate sees of N refined poses (all (N, K) arrays; NaN where not refined).

    Attributes:
        ref_conf: refiner peak mass in [0, 1].
        input_mass: refiner softmax mass within 1.5 grid pixels of the input keypoint.
        in_conf: the input keypoint's confidence.
        move: d**2 / (2 s**2 k_j**2), the move from input to refined point in OKS units (0 = no move).
        refinable: bool, the pose was refined and the input keypoint is predicted (not absent).
    """

    ref_conf: np.ndarray
    input_mass: np.ndarray
    in_conf: np.ndarray
    move: np.ndarray
    refinable: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int, in_conf: np.ndarray) -> "KeypointEvidence":
        nan = np.full((n, k), np.nan)
        return cls(nan.copy(), nan.copy(), np.asarray(in_conf, dtype=np.float64).reshape(n, k).copy(), nan.copy(),
                   np.zeros((n, k), bool))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.nan_to_num(np.asarray(p, np.float64), nan=0.5), _EPS_P, 1.0 - _EPS_P)
    return np.log(p) - np.log1p(-p)


def feature_matrix(ev: KeypointEvidence) -> np.ndarray:
    """(N, K, F) features of :data:`FEATURES` (rows that are not refinable hold finite placeholders)."""
    ok = ev.refinable
    ref = _logit(ev.ref_conf)
    n_ok = ok.sum(axis=1, keepdims=True)
    person = np.where(n_ok > 0, (ref * ok).sum(axis=1, keepdims=True) / np.maximum(n_ok, 1), 0.0)
    person = np.broadcast_to(person, ref.shape)
    conf = np.clip(np.nan_to_num(np.asarray(ev.in_conf, np.float64), nan=0.0), 0.0, 1.0)
    move = np.log1p(np.maximum(np.nan_to_num(np.asarray(ev.move, np.float64), nan=0.0), 0.0))
    rc = np.nan_to_num(np.asarray(ev.ref_conf, np.float64), nan=0.0)
    im = np.nan_to_num(np.asarray(ev.input_mass, np.float64), nan=0.0)
    agreement = np.log((im + _EPS_MASS) / (rc + _EPS_MASS))
    return np.stack([ref, person, conf, move, agreement, ref * move, conf * move], axis=-1)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> np.ndarray:
    """Weighted ridge logistic regression by IRLS (Newton's method), deterministic.

    Args:
        x: (M, F) standardised features; y: (M,) 0/1 labels; w: (M,) non-negative sample weights.
        l2: ridge strength relative to the total weight (the intercept is not penalised).

    Returns:
        (F + 1,) weights, intercept first.
    """
    x = np.asarray(x, np.float64)
    m, f = x.shape
    xa = np.concatenate([np.ones((m, 1)), x], axis=1)
    y, w = np.asarray(y, np.float64), np.asarray(w, np.float64)
    total = float(w.sum())
    if total <= 0:
        raise PosefixError("gate: no calibration keypoint changed its keypoint similarity (nothing to fit)")
    ridge = np.full(f + 1, l2 * total)
    ridge[0] = 0.0
    beta = np.zeros(f + 1)
    p0 = float((w * y).sum() / total)
    beta[0] = math.log(max(p0, 1e-6) / max(1.0 - p0, 1e-6))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xa @ beta, -30, 30)))
        grad = xa.T @ (w * (p - y)) + ridge * beta
        hess = (xa * (w * p * (1 - p))[:, None]).T @ xa + np.diag(ridge) + 1e-9 * total * np.eye(f + 1)
        step = np.linalg.solve(hess, grad)
        beta = beta - step
        if np.abs(step).max() < 1e-10:
            break
    return beta


@dataclass
class Gate:
    """A calibrated gate: standardisation, logistic weights, threshold, and the record of its calibration.

    Attributes:
        features: the feature names (:data:`FEATURES`, in order).
        mean, std: (F,) standardisation of the calibration features.
        weights: (F + 1,) intercept first.
        threshold: accept where the probability of improving is at least this (> 1: accept nothing).
        calibration: how it was calibrated (data, persons, method, parameters, objective, measured numbers).
    """

    features: tuple
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    threshold: float
    calibration: dict = field(default_factory=dict)

    def probability(self, ev: KeypointEvidence) -> np.ndarray:
        """(N, K) probability that the refined keypoint is better than the input one (NaN where not refinable)."""
        z = (feature_matrix(ev) - self.mean) / self.std
        p = 1.0 / (1.0 + np.exp(-np.clip(self.weights[0] + z @ self.weights[1:], -30, 30)))
        return np.where(ev.refinable, p, np.nan)

    def decide(self, ev: KeypointEvidence) -> np.ndarray:
        """(N, K) bool: take the refined keypoint."""
        p = self.probability(ev)
        return ev.refinable & (np.nan_to_num(p, nan=-1.0) >= self.threshold)

    def to_dict(self) -> dict:
        return {
            "format": GATE_FORMAT,
            "model": "logistic",
            "features": list(self.features),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "weights": [float(v) for v in self.weights],
            "threshold": float(self.threshold),
            "calibration": dict(self.calibration),
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "gate") -> "Gate":
        """A gate from its record; a record this version cannot use is a one-line error naming ``source``."""
        if not isinstance(d, Mapping):
            raise PosefixError(f"{source}: the gate is not a dict")
        if d.get("format") != GATE_FORMAT:
            raise PosefixError(f"{source}: unsupported gate format {d.get('format')!r} (this version reads "
                               f"{GATE_FORMAT!r})")
        feats = d.get("features")
        if not isinstance(feats, list) or tuple(feats) != FEATURES:
            raise PosefixError(f"{source}: gate features {feats!r} are not this version's {list(FEATURES)}")
        f = len(FEATURES)
        arrays = {}
        for key, n in (("mean", f), ("std", f), ("weights", f + 1)):
            try:
                a = np.asarray(d.get(key), dtype=np.float64)
            except (TypeError, ValueError):
                a = np.zeros(0)
            if a.shape != (n,) or not np.isfinite(a).all():
                raise PosefixError(f"{source}: gate '{key}' must be {n} finite numbers")
            arrays[key] = a
        if (arrays["std"] <= 0).any():
            raise PosefixError(f"{source}: gate 'std' must be positive")
        t = d.get("threshold")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise PosefixError(f"{source}: gate 'threshold' must be a finite number, got {t!r}")
        calibration = d.get("calibration") or {}
        if not isinstance(calibration, Mapping):
            raise PosefixError(f"{source}: gate 'calibration' must be a dict")
        return cls(FEATURES, arrays["mean"], arrays["std"], arrays["weights"], float(t), dict(calibration))
