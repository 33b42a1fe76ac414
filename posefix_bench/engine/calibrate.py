"""Gate calibration: fit a finished refiner's per-keypoint gate (:mod:`posefix_bench.engine.gate`) on persons of
the training split that the refiner did not train on, and store it in the checkpoint with how it was calibrated.

Data (never the validation split): by default the training images that training held out
(``data.holdout``, :func:`posefix_bench.engine.data.holdout_image_ids`), read from the checkpoint's own training
config; or the training split of another dataset (``root`` / ``split``, e.g. coco-mini's ``train2017`` for a
sandbox-trained refiner), minus any image the refiner trained on (compared by image file).

Inputs: for transfer to estimators whose errors differ from the training mix, the calibration poses are
synthesised (PoseFix Sec. 4, :mod:`posefix_bench.synthesis.synthesize`) with several error mixes, by default
:data:`DEFAULT_MIXES`: the paper mix, inputs without errors (a strong estimator: the refiner can only break them),
jitter only (small errors) and a miss-heavy mix, each drawn ``draws`` times; estimator results on the
calibration images may be added. Every input set counts equally.

Per keypoint: the refiner runs once on every input set (ungated), the input pose is matched to the ground truth as
the diagnosis does (:func:`posefix_bench.evaluation.diagnosis.classify`, Ronchi & Perona's matching), and the KS of
the input and of the refined keypoint with the matched person's own joint give the label and weight of the
logistic fit (:func:`posefix_bench.engine.gate.fit_logistic`).

Objective of the threshold: COCO keypoint AP (OKS 0.50:0.05:0.95, poses ranked by score, 101 recall points) of
every input set, computed from the per-keypoint KS with each pose's ground-truth match held fixed
(:func:`ap_proxy`; exact for one pose per person), so that a threshold sweep costs no COCO evaluation. Among the
thresholds where no input set loses more than :data:`DEFAULT_TOLERANCE` (0.002) AP ("do no harm"), the largest that
keeps :data:`DEFAULT_KEEP` (95%) of the best mean gain: the fewest accepted keypoints at almost the best gain, a
margin for inputs unlike the calibration's. Where no threshold gains, the gate accepts nothing (it keeps every input
keypoint). COCO AP (pycocotools) of the input, ungated and gated poses on the calibration data is recorded with the
gate.

Why a tolerance of 0.002 AP and not 0: a bound of exactly 0 is decided by the error-free inputs (``none``), where
every accepted move can only lose and a few poses falling below OKS 0.95 (about 0.0002 AP each on 500 persons,
0.0007 on 150) forbid every threshold below about 0.9, whatever that costs the inputs with errors: such a gate
rejects the confident keypoints with small moves, which is where a low-resolution estimator's small systematic
errors lie (issue 17: on the quick profile it kept 50% of the ungated gain on a sandbox-trained SimpleBaseline; over
three calibration seeds the threshold moved between 0.89 and 0.95). 0.002 AP is about the sampling noise of the mean AP
gain on a calibration set of a few hundred persons (its bootstrap standard error measured 0.0013 - 0.0023 on the
quick hold-out and on coco-mini's training split); a larger bound (0.005) let the 143-person coco-mini calibration
pick thresholds near 0.5 on some seeds, where real estimator inputs (mediapipe) lose AP.

Shape legend: N poses, K keypoints, M matched labelled keypoints (rows), G input sets, T thresholds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from posefix_bench.errors import PosefixError, file_error
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.coco import CocoDataset, coco_split_paths

__all__ = ["DEFAULT_MIXES", "DEFAULT_DRAWS", "DEFAULT_KEEP", "DEFAULT_L2", "DEFAULT_TOLERANCE", "OKS_THRESHOLDS",
           "CalibrationData", "calibration_data", "calibration_inputs", "gate_rows", "ap_proxy", "fit_gate",
           "calibrate_checkpoint", "gate_summary"]

DEFAULT_MIXES = ("paper", "none", "jitter-only", "miss-heavy")
DEFAULT_DRAWS = 2
DEFAULT_KEEP = 0.95
DEFAULT_L2 = 1e-3
DEFAULT_TOLERANCE = 0.002  # AP an input set may lose: about the calibration AP's sampling noise
OKS_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)
ACCEPT_NONE = 1.01  # a threshold above every probability


@dataclass
class CalibrationData:
    """The calibration images of one dataset split and how they were chosen."""

    dataset: CocoDataset
    image_ids: list
    record: dict


class _ImageSubset:
    """A :class:`CocoDataset` seen through a subset of its images (what synthesis iterates over)."""

    def __init__(self, gt: CocoDataset, image_ids: Sequence[int]):
        self._gt, self.image_ids = gt, sorted(int(i) for i in image_ids)

    def __getattr__(self, name):
        return getattr(self._gt, name)


def _image_files(gt: CocoDataset, ids) -> set:
    return {str((gt.image_dir / gt.coco.imgs[i]["file_name"]).resolve()) for i in ids} if gt.image_dir else set()


def calibration_data(meta: Mapping, root: str | os.PathLike | None = None, split: str | None = None) -> CalibrationData:
    """The calibration images for a refiner with checkpoint ``meta`` (its ``train_config`` and ``dataset``).

    Without ``root``: the images its training held out (an error when it held out none). With ``root`` and
    ``split``: that split's images minus those the refiner trained on.
    """
    from posefix_bench.engine.data import holdout_image_ids
    from posefix_bench.engine.train_config import data_root, parse_config

    cfg = meta.get("train_config")
    if not isinstance(cfg, Mapping):
        raise PosefixError("calibrate: the checkpoint has no training config (meta 'train_config'): give the data "
                           "to calibrate on with root and split")
    _, data, _ = parse_config(cfg)
    train_ann, train_images = coco_split_paths(data_root(data), data.train_split)
    trained_on = None
    if train_ann.is_file():
        train_gt = CocoDataset(train_ann, train_images)
        held = holdout_image_ids(train_gt.image_ids, data.holdout, data.holdout_seed)
        trained_on = (train_gt, sorted(set(train_gt.image_ids) - set(held)), held)
    if root is None:
        if trained_on is None:
            raise file_error(train_ann, "the refiner's training annotations are not there (needed to find the "
                                        "held-out images)")
        gt, _, held = trained_on
        if not held:
            raise PosefixError(f"calibrate: the refiner trained on every image of {train_ann} (data.holdout is 0): "
                               "give another dataset's training split (root, split) or retrain with data.holdout")
        ids, how = held, (f"hold-out of the training split: {len(held)} of {len(gt)} images "
                          f"(data.holdout={data.holdout}, holdout_seed={data.holdout_seed}), excluded from training")
    else:
        if not split:
            raise PosefixError("calibrate: give the split to calibrate on with the data root")
        if "val" in str(split).lower():
            raise PosefixError(f"calibrate: split {split!r} looks like a validation split; the gate is calibrated "
                               "on training data only")
        ann, images = coco_split_paths(root, split)
        if not ann.is_file():
            raise file_error(ann, f"annotation file of split {split!r} not found")
        gt = CocoDataset(ann, images)
        ids = gt.image_ids
        how = f"training split {split} of {root}, every image"
        if trained_on is None:
            how += " (overlap with the refiner's training images not checked: its training annotations are not there)"
        else:
            seen = _image_files(trained_on[0], trained_on[1])
            ids = [i for i, f in zip(ids, [_image_files(gt, [i]) for i in ids]) if not (f & seen)]
            if len(ids) < len(gt):
                how = (f"training split {split} of {root}: the {len(ids)} of {len(gt)} images the refiner did not "
                       "train on")
        if not ids:
            raise PosefixError(f"calibrate: the refiner trained on every image of {ann}")
    persons = sum(int(((~a.iscrowd) & ((a.keypoints[..., 2] > 0).sum(axis=1) > 0)).sum())
                  for a in (gt.gt_arrays(i) for i in ids))
    if persons == 0:
        raise PosefixError(f"calibrate: no person with labelled keypoints on the {len(ids)} calibration images")
    record = {"annotations": str(gt.path), "images": len(ids), "persons": persons, "selection": how,
              "image_ids_first": [int(i) for i in ids[:5]]}
    return CalibrationData(gt, list(ids), record)


def calibration_inputs(data: CalibrationData, mixes: Sequence = DEFAULT_MIXES, draws: int = DEFAULT_DRAWS,
                       seed: int = 0, results: Mapping[str, Sequence[dict]] | None = None) -> list[dict]:
    """The input sets: ``{"name", "kind", "records", ...}`` per (mix, draw), then the given estimator results
    (restricted to the calibration images). Synthesis seeds are drawn from ``seed`` per (mix, draw)."""
    from posefix_bench.synthesis.mixes import get_mix
    from posefix_bench.synthesis.synthesize import synthesize_results

    if int(draws) < 1:
        raise PosefixError(f"calibrate: draws must be >= 1, got {draws}")
    subset = _ImageSubset(data.dataset, data.image_ids)
    sets = []
    for i, spec in enumerate(mixes):
        mix = get_mix(spec, data.dataset.schema)
        for d in range(int(draws)):
            s = int(np.random.default_rng((int(seed), i, d, 4)).integers(2**31))
            sets.append({"name": f"{mix.name}#{d}", "kind": "synthetic", "mix": mix.name, "seed": s,
                         "records": synthesize_results(subset, mix, s)})
    keep = set(data.image_ids)
    for name, recs in dict(results or {}).items():
        recs = [r for r in recs if int(r["image_id"]) in keep]
        if not recs:
            raise PosefixError(f"calibrate: results {name} have no pose on the {len(keep)} calibration images")
        sets.append({"name": str(name), "kind": "results", "records": recs})
    return sets


def gate_rows(gt: CocoDataset, records: Sequence[dict], refined: Sequence[dict], evidence,
              absent_policy: str) -> dict:
    """What the fit and the objective need of one input set.

    Per matched labelled keypoint of the input poses (rows, M): ``ks_in``, ``ks_ref`` (the refined keypoint's KS with
    the same ground-truth joint), ``det`` (record index), ``joint``, ``refinable`` and the (M, F) ``features``. Per
    record (N): ``scores`` and ``status`` (1 matched, 0 an unmatched detection: a false positive, -1 out of the
    evaluation: matched to a crowd / ignore region or beyond the image's top 20).
    """
    from posefix_bench.codecs.oks import keypoint_similarity
    from posefix_bench.engine.gate import feature_matrix
    from posefix_bench.evaluation.diagnosis import classify
    from posefix_bench.structures.results import absent_mask

    table = classify(gt, records, absent_policy)
    k = gt.schema.num_keypoints
    ref = np.asarray([r["keypoints"] for r in refined], dtype=np.float64).reshape(len(refined), k, 3)
    det, joint = table.result_index, table.joint
    xy = ref[det, joint, :2]
    ks_ref = keypoint_similarity(((xy - table.gt_xy) ** 2).sum(-1)[:, None], table.area,
                                 gt.schema.sigma_array[joint][:, None])[:, 0] if len(det) else np.zeros(0)
    ks_ref = np.where(absent_mask(ref, absent_policy)[det, joint], 0.0, ks_ref)
    status = np.where(table.det_ann_id >= 0, 1, np.where(table.det_evaluated & ~table.det_ignored, 0, -1))
    return {"ks_in": np.asarray(table.ks_own, np.float64), "ks_ref": ks_ref, "det": det, "joint": joint,
            "refinable": evidence.refinable[det, joint], "features": feature_matrix(evidence)[det, joint],
            "scores": np.asarray([float(r["score"]) for r in records]), "status": status}


def ap_proxy(ks: np.ndarray, rows: dict, n_persons: int) -> float:
    """COCO keypoint AP of one input set from per-row KS, with the matches held fixed.

    OKS of a matched pose = mean KS over its rows; at each OKS threshold of COCO (0.50:0.05:0.95) matched poses at or
    above it are true positives and all other evaluated poses false positives, ranked by score; precision is
    interpolated and averaged over COCO's 101 recall points against ``n_persons``. It equals COCO AP where the
    greedy matching does not change between thresholds (one pose per person, as synthesised inputs), and is cheap
    enough to sweep a threshold.
    """
    det, status, scores = rows["det"], rows["status"], rows["scores"]
    oks_sum = np.bincount(det, weights=ks, minlength=len(status))
    count = np.bincount(det, minlength=len(status))
    oks = np.where((status == 1) & (count > 0), oks_sum / np.maximum(count, 1), -np.inf)
    used = np.flatnonzero(status >= 0)
    order = used[np.argsort(-scores[used], kind="mergesort")]
    tp = oks[order][None, :] >= OKS_THRESHOLDS[:, None]  # (T, D)
    ctp = np.cumsum(tp, axis=1)
    recall = ctp / max(n_persons, 1)
    precision = ctp / np.arange(1, len(order) + 1)[None, :]
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # COCO's interpolation
    points = np.linspace(0.0, 1.0, 101)
    total = 0.0
    for t in range(len(OKS_THRESHOLDS)):
        idx = np.searchsorted(recall[t], points, side="left")
        total += np.where(idx < len(order), precision[t][np.minimum(idx, len(order) - 1)], 0.0).mean()
    return float(total / len(OKS_THRESHOLDS)) if len(order) else 0.0


def fit_gate(groups: list[dict], n_persons: int, keep: float = DEFAULT_KEEP, l2: float = DEFAULT_L2,
             tolerance: float = DEFAULT_TOLERANCE):
    """Fit the gate on the rows of G input sets (:func:`gate_rows` each, plus ``name``) and choose its threshold.

    Threshold: on a 0.01 grid, among the thresholds where no input set's AP (:func:`ap_proxy`) falls by more than
    ``tolerance``, the largest whose mean AP gain is at least ``keep`` of the best; none gains: accept nothing.

    Returns:
        (Gate, record): the record holds the fit (rows, weights), the threshold curve and, per input set, the AP
        (proxy) of the input and its change ungated and gated, and the accepted share.
    """
    from posefix_bench.engine.gate import FEATURES, Gate, fit_logistic

    if not 0 < keep <= 1:
        raise PosefixError(f"calibrate: keep must be in (0, 1], got {keep}")
    if not tolerance >= 0:
        raise PosefixError(f"calibrate: tolerance must be >= 0, got {tolerance}")
    x = np.concatenate([g["features"][g["refinable"]] for g in groups])
    if not len(x):
        raise PosefixError("calibrate: no refinable calibration keypoint matched a ground-truth person")
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    xs, ys, ws = [], [], []
    for g in groups:
        r = g["refinable"]
        delta = (g["ks_ref"] - g["ks_in"])[r]
        total = np.abs(delta).sum()
        if total > 0:  # every input set weighs the same
            xs.append((g["features"][r] - mean) / std)
            ys.append((delta > 0).astype(np.float64))
            ws.append(np.abs(delta) / total)
    if not xs:
        raise PosefixError("calibrate: the refiner moved no calibration keypoint (nothing to fit)")
    beta = fit_logistic(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws), l2=l2)
    gate = Gate(FEATURES, mean, std, beta, ACCEPT_NONE)
    grid = np.append(THRESHOLD_GRID, ACCEPT_NONE)
    gains = np.zeros((len(groups), len(grid)))  # AP change per input set and threshold
    shares = np.zeros((len(groups), len(grid)))
    for j, g in enumerate(groups):
        z = (g["features"] - mean) / std
        g["p"] = np.where(g["refinable"], 1.0 / (1.0 + np.exp(-np.clip(beta[0] + z @ beta[1:], -30, 30))), -1.0)
        g["ap_input"] = ap_proxy(g["ks_in"], g, n_persons)
        g["ap_ungated"] = ap_proxy(np.where(g["refinable"], g["ks_ref"], g["ks_in"]), g, n_persons)
        for i, t in enumerate(grid):
            acc = g["p"] >= t
            gains[j, i] = ap_proxy(np.where(acc, g["ks_ref"], g["ks_in"]), g, n_persons) - g["ap_input"]
            shares[j, i] = acc.sum() / max(g["refinable"].sum(), 1)
    mean_gain = gains.mean(axis=0)
    feasible = (gains >= -tolerance).all(axis=0)
    best = float(mean_gain[feasible].max())
    if best > 0:
        ok = feasible & (mean_gain >= best - (1 - keep) * best)
        gate.threshold = float(grid[np.flatnonzero(ok).max()])
    chosen = int(np.flatnonzero(grid == gate.threshold)[0])
    per_set = {g["name"]: {
        "rows": int(len(g["ks_in"])), "refinable": int(g["refinable"].sum()),
        "accepted_share": float(shares[j, chosen]), "ap_input": g["ap_input"],
        "delta_ap_ungated": g["ap_ungated"] - g["ap_input"], "delta_ap_gated": float(gains[j, chosen]),
    } for j, g in enumerate(groups)}
    record = {
        "fit_rows": int(sum(len(v) for v in ys)), "features": list(FEATURES), "l2": float(l2), "keep": float(keep),
        "tolerance": float(tolerance),
        "threshold_curve": [[float(t), float(mean_gain[i]), float(shares[:, i].mean()), bool(feasible[i])]
                            for i, t in enumerate(grid) if round(float(t) * 100) % 5 == 0 or i == chosen],
        "best_gain": best, "chosen_gain": float(mean_gain[chosen]),
        "per_input_set": per_set,
    }
    return gate, record


def calibrate_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    split: str | None = None,
    mixes: Sequence = DEFAULT_MIXES,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    results: Mapping[str, Sequence[dict]] | None = None,
    keep: float = DEFAULT_KEEP,
    l2: float = DEFAULT_L2,
    tolerance: float = DEFAULT_TOLERANCE,
    device: str = "cpu",
    batch_size: int = 64,
    precision: str = "fp32",
    progress: Progress = no_progress,
) -> dict:
    """Calibrate the gate of a finished refiner checkpoint and write it into ``out`` (default: the checkpoint).

    Args:
        checkpoint: a refiner checkpoint with its training config in meta (``final.pth``).
        out: the checkpoint to write (a copy with the gate); default: ``checkpoint`` itself.
        root, split: calibrate on this dataset split instead of the training hold-out (see :func:`calibration_data`).
        mixes, draws, seed: the synthesised input sets (:func:`calibration_inputs`).
        results: optional ``{name: records}`` estimator results on the calibration images, added as input sets.
        keep, l2, tolerance: the threshold rule and the ridge strength (:func:`fit_gate`).
        device, batch_size, precision: how the refiner runs (the gate is calibrated without the flip test, crops
            from the input keypoints' box).
        progress: progress wrapper.

    Returns:
        ``{"gate": the gate record (as stored), "path": the written checkpoint}``.
    """
    from posefix_bench.engine.refine import RefinePostProcessor
    from posefix_bench.evaluation.coco_eval import evaluate
    from posefix_bench.models.checkpoint import save_gate
    from posefix_bench import __version__

    post = RefinePostProcessor(checkpoint, device=device, batch_size=batch_size, precision=precision, gate=False)
    if not post.trained:
        raise PosefixError(f"calibrate: {checkpoint} is an untrained refiner (meta trained=false); nothing to gate")
    data = calibration_data(post.meta, root, split)
    sets = calibration_inputs(data, mixes, draws, seed, results)
    groups, outputs = [], []
    for s in progress(sets, total=len(sets), desc="calibrate"):
        res = post.refine_detailed(data.dataset, s["records"])
        groups.append(dict(gate_rows(data.dataset, s["records"], res.ungated, res.evidence, post.absent_policy),
                           name=s["name"]))
        outputs.append(res)
    gate, fit = fit_gate(groups, data.record["persons"], keep, l2, tolerance)
    ap = {}
    for s, res in zip(sets, outputs):
        accept = gate.decide(res.evidence)
        kp = np.asarray([r["keypoints"] for r in s["records"]], np.float64).reshape(accept.shape + (3,))
        ref = np.asarray([r["keypoints"] for r in res.ungated], np.float64).reshape(kp.shape)
        gated = [dict(r, keypoints=[float(v) for v in np.where(a[:, None], f, i).reshape(-1)])
                 for r, a, f, i in zip(s["records"], accept, ref, kp)]
        vals = {name: evaluate(data.dataset, recs, post.absent_policy, image_ids=data.image_ids)["metrics"]["AP"]
                for name, recs in (("input", s["records"]), ("ungated", res.ungated), ("gated", gated))}
        ap[s["name"]] = dict(AP=vals, accepted_share=float(accept.sum() / max(res.evidence.refinable.sum(), 1)))
    gate.calibration = {
        "created_by": f"posefix-bench {__version__}",
        "checkpoint": str(checkpoint),
        "method": ("weighted ridge logistic regression (IRLS) of P(KS(refined) > KS(input)) with weights "
                   f"|KS(refined) - KS(input)|, l2 {l2:g}; threshold: on a 0.01 grid, among those where no input set "
                   f"loses more than {tolerance:g} AP, the largest keeping {keep:g} of the best mean AP gain "
                   "(accept nothing when nothing gains)"),
        "objective": ("mean over input sets of the COCO AP change (OKS 0.50:0.05:0.95, score-ranked, 101 recall "
                      "points) with each pose's ground-truth match held fixed"),
        "data": data.record,
        "inputs": [{k: v for k, v in s.items() if k != "records"} | {"poses": len(s["records"])} for s in sets],
        "seed": int(seed), "draws": int(draws), "mixes": [str(m) for m in mixes],
        "refiner": {"box": post.box, "flip": post.flip, "precision": post.precision,
                    "absent_policy": post.absent_policy},
        "fit": fit,
        "coco_ap": ap,
        "summary": _summary(ap, fit),
    }
    record = gate.to_dict()
    path = save_gate(checkpoint, record, out)
    return {"gate": record, "path": str(path)}


def _summary(ap: dict, fit: dict) -> dict:
    """Mean AP change ungated / gated over the input sets, the share of the gain kept, the accepted share."""
    du = [v["AP"]["ungated"] - v["AP"]["input"] for v in ap.values()]
    dg = [v["AP"]["gated"] - v["AP"]["input"] for v in ap.values()]
    mu, mg = float(np.mean(du)), float(np.mean(dg))
    return {"mean_delta_AP_ungated": mu, "mean_delta_AP_gated": mg,
            "gain_kept": (mg / mu) if mu > 0 else None,
            "accepted_share": float(np.mean([v["accepted_share"] for v in ap.values()])),
            "threshold_objective_best": fit["best_gain"], "threshold_objective_chosen": fit["chosen_gain"]}


def gate_summary(gate: Mapping | None) -> dict:
    """What a report needs of a stored gate record (``{"gate": "off"}`` for None): threshold, calibration data,
    inputs, method, objective and the calibration-data summary (AP change ungated / gated, accepted share)."""
    if gate is None:
        return {"gate": "off"}
    cal = dict(gate.get("calibration") or {})
    return {
        "gate": "calibrated",
        "threshold": gate.get("threshold"),
        "features": gate.get("features"),
        "data": cal.get("data"),
        "inputs": [s.get("name") for s in cal.get("inputs", [])],
        "method": cal.get("method"),
        "objective": cal.get("objective"),
        "calibration_summary": cal.get("summary"),
    }
