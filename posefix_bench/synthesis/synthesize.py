"""Input-pose synthesis: ground-truth persons -> erroneous input poses with a controlled error mix, and the
synthetic upstream source built on it.

Method: PoseFix (Moon et al., CVPR 2019, Sec. 4), after the error taxonomy of Ronchi & Perona (ICCV 2017): every
labelled keypoint of a target person draws a class from the mix (:mod:`posefix_bench.synthesis.mixes`) and is
placed in that class's OKS-defined region; regions, candidate sets and the vectorised sampling are described in
:mod:`posefix_bench.synthesis.sampler`. A class whose region is empty for a keypoint drops out and the others
renormalise. Unlabelled joints take the estimator's keypoint when one is given and it is not absent, else they stay
unset.

Synthetic results (:func:`synthesize_results`) add a per-keypoint confidence and an instance score so that the
synthetic source looks like an estimator whose confidences are informative but imperfect::

    q     = 0.6 * KS(own joint) + 0.4 * KS(nearest candidate)   # on someone's joint -> looks like a joint
    conf  = sigmoid(6 * (q - 0.5) + 0.75 * z),  z ~ N(0, 1)      # in (0, 1), noisy, falls with the error
    score = mean conf over the person's set keypoints

so good keypoints get ~0.9, jitter ~0.7, inversions and swaps ~0.5, misses ~0.2, with overlapping spreads.
Keypoints taken from an estimator keep its confidence; unset keypoints are written as (0, 0, 0) ("absent").

Determinism: image ``image_id`` of a dataset uses the stream ``default_rng((seed, image_id))`` for its poses, then
for its confidence noise, so a person's pose does not depend on which other images are synthesised with it.

Shape legend: G persons of an image, T targets, N persons of a dataset, K keypoints, C = 5 classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posefix_bench.codecs.oks import oks_matrix
from posefix_bench.codecs.taxonomy import ERROR_TYPES, labelled_counts
from posefix_bench.errors import PosefixError
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.results import absent_mask, arrays_to_results, results_to_arrays
from posefix_bench.structures.rows import ArrayRows
from posefix_bench.structures.schema import KeypointSchema
from posefix_bench.synthesis.mixes import ErrorMix
from posefix_bench.synthesis.sampler import DEFAULT_SAMPLES, Batch, Sampled, sample_batch

__all__ = [
    "DEFAULT_SAMPLES",
    "SynthesisResult",
    "SyntheticPoses",
    "synthesize_poses",
    "synthesize_dataset",
    "synthesize_results",
    "synthetic_confidences",
    "match_estimates",
]

ESTIMATE_MIN_OKS = 0.3  # an estimator pose lends its keypoints to a ground-truth person only above this OKS
CHUNK_ELEMENTS = 2_000_000  # pairs x candidates x samples per batch of images (bounds the sampler's memory)


@dataclass(frozen=True)
class SynthesisResult(Sampled):
    """Synthesised input poses for T target persons of one image (the sampled fields, keyword-only, from
    :class:`~posefix_bench.synthesis.sampler.Sampled`).

    Attributes:
        targets: (T,) indices of the targets among the image's G persons.
        keypoints: (T, K, 3) x, y, valid (1.0 where the keypoint is set, else 0.0 with x = y = 0).
        cls: (T, K) int64 class codes into ERROR_TYPES; -1 where the joint is unlabelled (unset, or taken from
            the estimator).
        ks: (T, K) KS of the keypoint with its own joint; NaN where the joint is unlabelled.
        ks_near: (T, K) best KS over all candidates (own, symmetric, other persons' joints); NaN likewise.
        probabilities: (T, K, C) the class probabilities actually sampled from: the mix's, with classes whose
            region was empty dropped and the rest renormalised (zeros where the joint is unlabelled).
        v: (T,) labelled keypoints V; o: (T,) overlapping persons O (the mix's conditioning).
    """

    targets: np.ndarray
    keypoints: np.ndarray


def _check_mix(mix: ErrorMix, schema: KeypointSchema) -> ErrorMix:
    if not isinstance(mix, ErrorMix):
        raise PosefixError(f"synthesis: expected an ErrorMix (see synthesis.mixes.get_mix), got {type(mix).__name__}")
    if mix.schema.keypoints != schema.keypoints:
        raise PosefixError(f"error mix {mix.name} is for schema {mix.schema.name}, not {schema.name}")
    return mix


def _check_samples(samples: int) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise PosefixError(f"synthesis: samples must be a positive integer, got {samples!r}")


def synthesize_poses(
    gt_keypoints: np.ndarray,
    areas: np.ndarray,
    boxes: np.ndarray,
    mix: ErrorMix,
    rng: np.random.Generator,
    schema: KeypointSchema,
    targets: Sequence[int] | np.ndarray | None = None,
    estimator_keypoints: np.ndarray | None = None,
    counted: np.ndarray | None = None,
    samples: int = DEFAULT_SAMPLES,
) -> SynthesisResult:
    """Synthesise input poses for persons of ONE image (any coordinate frame).

    Args:
        gt_keypoints: (G, K, 3) ground truth x, y, v of all persons of the image.
        areas: (G,) areas (the OKS scale); boxes: (G, 4) x, y, w, h (for O).
        mix: class probabilities (:func:`posefix_bench.synthesis.mixes.get_mix`).
        rng: the image's random stream; the same state gives the same poses.
        schema: keypoint schema (sigmas, flip pairs).
        targets: distinct indices of the persons to synthesise, in the order wanted; default: every counted person.
        estimator_keypoints: optional (T, K, 3) x, y, confidence of an estimator's pose for each target; its
            non-absent keypoints fill the target's unlabelled joints.
        counted: (G,) bool, persons that can be swap sources and count in O; only persons with a labelled
            keypoint ever count. Default: all of them (pass ``~iscrowd`` for COCO crowds). Every person's labelled
            joints are candidates of the classification, counted or not, as in the diagnosis.
        samples: candidate points M per keypoint and attempt.

    Returns:
        :class:`SynthesisResult`.
    """
    gt = np.asarray(gt_keypoints, dtype=np.float64)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    k = schema.num_keypoints
    if gt.ndim != 3 or gt.shape[1:] != (k, 3):
        raise PosefixError(f"synthesis: ground-truth keypoints of shape {gt.shape}, expected (G, {k}, 3)")
    if areas.shape != gt.shape[:1] or boxes.shape != (gt.shape[0], 4):
        raise PosefixError(f"synthesis: {gt.shape[0]} persons but areas {areas.shape} and boxes {boxes.shape}")
    _check_mix(mix, schema)
    _check_samples(samples)
    has_kp = labelled_counts(gt) > 0
    counted = has_kp if counted is None else has_kp & np.asarray(counted, bool).reshape(-1)
    targets = np.flatnonzero(counted) if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)
    if targets.size and (targets.min() < 0 or targets.max() >= len(gt) or np.unique(targets).size < targets.size):
        raise PosefixError(f"synthesis: targets {targets.tolist()} must be distinct indices of the {len(gt)} persons")
    is_target = np.zeros(len(gt), bool)
    is_target[targets] = True
    batch = Batch(gt[None], areas[None], boxes[None], counted[None], is_target[None])
    res = sample_batch(batch, mix, [rng], schema, samples)
    order = np.argsort(np.argsort(targets))  # batch results come in person order
    xy, lab = res.xy[order], gt[targets, :, 2] > 0
    return SynthesisResult(targets, _with_estimates(xy, lab, estimator_keypoints), **res.sampled(order))


def _with_estimates(xy: np.ndarray, lab: np.ndarray, estimator_keypoints: np.ndarray | None) -> np.ndarray:
    """(T, K, 3) x, y, valid: synthesised labelled joints, estimator keypoints on unlabelled ones, else unset."""
    kp = np.zeros(lab.shape + (3,))
    kp[lab, :2] = xy[lab]
    kp[lab, 2] = 1.0
    if estimator_keypoints is not None:
        est = np.asarray(estimator_keypoints, dtype=np.float64)
        if est.shape != kp.shape:
            raise PosefixError(f"synthesis: estimator keypoints of shape {est.shape}, expected {kp.shape}")
        fill = ~lab & ~absent_mask(est) & np.isfinite(est).all(axis=-1)
        kp[fill, :2] = est[fill, :2]
        kp[fill, 2] = 1.0
    return kp


# -- the synthetic source over a dataset -------------------------------------------------------------------------
def synthetic_confidences(ks: np.ndarray, ks_near: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Per-keypoint confidences in (0, 1) (module docstring): (T, K) KS with the own joint, (T, K) KS with the
    nearest candidate, (T, K) standard normal noise -> (T, K); NaN inputs give NaN."""
    q = 0.6 * np.asarray(ks) + 0.4 * np.asarray(ks_near)
    return 1.0 / (1.0 + np.exp(-(6.0 * (q - 0.5) + 0.75 * np.asarray(noise))))


@dataclass(frozen=True)
class SyntheticPoses(ArrayRows, rows="image_ids"):
    """A synthetic upstream source over a whole dataset (N persons, K keypoints), in image-id then ann-id order.

    Attributes:
        image_ids, ann_ids: (N,) the ground-truth person each pose was synthesised from.
        keypoints: (N, K, 3) x, y, confidence (0, 0, 0 where unset).
        scores: (N,) instance scores.
        cls: (N, K) synthesised class codes (-1 for unlabelled joints); ks: (N, K) KS with the own joint.
        probabilities: (N, K, C) the class probabilities sampled from (after empty regions dropped out).
        v, o: (N,) V and O of each person.
        category_id: the ground truth's keypoint category.
    """

    image_ids: np.ndarray
    ann_ids: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    cls: np.ndarray
    ks: np.ndarray
    probabilities: np.ndarray
    v: np.ndarray
    o: np.ndarray
    category_id: int

    def to_results(self) -> list[dict]:
        """COCO keypoint results, one record per person."""
        return arrays_to_results(self.image_ids, self.keypoints, self.scores, self.category_id)

    def class_counts(self) -> dict[str, int]:
        """Synthesised keypoints per class."""
        return {name: int((self.cls == c).sum()) for c, name in enumerate(ERROR_TYPES)}

    def expected_counts(self) -> dict[str, float]:
        """Expected keypoints per class under the sampled probabilities."""
        return {name: float(self.probabilities[..., c].sum()) for c, name in enumerate(ERROR_TYPES)}


def match_estimates(
    est_keypoints: np.ndarray,
    est_scores: np.ndarray,
    gt_keypoints: np.ndarray,
    areas: np.ndarray,
    boxes: np.ndarray,
    sigmas: np.ndarray,
    eligible: np.ndarray,
    min_oks: float = ESTIMATE_MIN_OKS,
) -> np.ndarray:
    """Greedy one-to-one matching of D estimator poses to G ground-truth persons of one image.

    Poses in decreasing score take the unmatched eligible person of highest OKS (absent keypoints count as KS 0),
    if it is at least ``min_oks`` (the COCO evaluation's greedy matching, with a loose threshold).

    Returns:
        (G,) index of the matched pose, -1 where none.
    """
    out = np.full(len(gt_keypoints), -1, dtype=np.int64)
    if len(est_keypoints) == 0 or not np.any(eligible):
        return out
    oks = oks_matrix(est_keypoints, gt_keypoints, areas, boxes, sigmas, det_absent=absent_mask(est_keypoints))
    oks = np.where(np.asarray(eligible, bool)[None, :], oks, -np.inf)
    for d in np.argsort(-np.asarray(est_scores), kind="stable"):
        g = int(np.argmax(oks[d]))
        if oks[d, g] >= min_oks:
            out[g] = d
            oks[:, g] = -np.inf
    return out


def _estimates_by_image(estimator_results, k: int) -> dict:
    arrays = results_to_arrays(list(estimator_results), num_keypoints=k)
    groups = {}
    for image_id in np.unique(arrays.image_ids):
        idx = np.flatnonzero(arrays.image_ids == image_id)
        groups[int(image_id)] = (arrays.keypoints[idx], arrays.scores[idx])
    return groups


def _chunks(gt, samples: int) -> list[list[int]]:
    """Image ids with persons to synthesise, grouped by their number of persons (little padding) so that a batch
    stays under CHUNK_ELEMENTS. Results do not depend on the grouping (every image has its own stream)."""
    sized = []
    for image_id in gt.image_ids:
        arr = gt.gt_arrays(image_id)
        n = int((arr.keypoints[~arr.iscrowd, :, 2] > 0).sum())
        if n and image_id < 0:
            raise PosefixError(f"{gt.path}: image id {image_id} is negative (synthesis streams need ids >= 0)")
        if n:
            sized.append((len(arr), n, int(image_id)))
    chunks, cur, pairs = [], [], 0
    for g, n, image_id in sorted(sized):
        if cur and (pairs + n) * (2 + 2 * g) * samples > CHUNK_ELEMENTS:
            chunks.append(cur)
            cur, pairs = [], 0
        cur.append(image_id)
        pairs += n
    return chunks + ([cur] if cur else [])


def _batch(gt, image_ids: list[int]) -> tuple[Batch, list]:
    arrs = [gt.gt_arrays(i) for i in image_ids]
    g_max, k = max(len(a) for a in arrs), gt.schema.num_keypoints
    kp, boxes = np.zeros((len(arrs), g_max, k, 3)), np.zeros((len(arrs), g_max, 4))
    areas, counted = np.ones((len(arrs), g_max)), np.zeros((len(arrs), g_max), bool)
    for m, a in enumerate(arrs):
        g = len(a)
        kp[m, :g], boxes[m, :g], areas[m, :g] = a.keypoints, a.boxes, a.areas
        counted[m, :g] = ~a.iscrowd & (labelled_counts(a.keypoints) > 0)
    return Batch(kp, areas, boxes, counted, counted.copy()), arrs


def _synthesize_chunk(gt, image_ids, mix, seed, estimates, samples) -> dict:
    batch, arrs = _batch(gt, image_ids)
    rngs = [np.random.default_rng((int(seed), i)) for i in image_ids]
    res = sample_batch(batch, mix, rngs, gt.schema, samples)
    lab = batch.keypoints[res.image, res.person, :, 2] > 0
    est = np.zeros(lab.shape + (3,))
    for m, image_id in enumerate(image_ids):  # estimator poses matched to this image's persons
        if image_id in estimates:
            rows = np.flatnonzero(res.image == m)
            e_kp, e_sc = estimates[image_id]
            match = match_estimates(e_kp, e_sc, arrs[m].keypoints, arrs[m].areas, arrs[m].boxes,
                                    gt.schema.sigma_array, batch.counted[m, :len(arrs[m])])[res.person[rows]]
            est[rows[match >= 0]] = e_kp[match[match >= 0]]
    kp = _with_estimates(res.xy, lab, est)
    counts = np.bincount(res.image, minlength=len(image_ids))
    noise = np.concatenate([rngs[m].standard_normal((int(counts[m]), lab.shape[1])) for m in range(len(image_ids))])
    conf = np.where(lab, synthetic_confidences(res.ks, res.ks_near, noise), est[..., 2])
    conf = np.where(kp[..., 2] > 0, conf, 0.0)
    kp[..., 2] = conf
    n_set = (kp[..., 2] > 0).sum(axis=1)
    return {
        "image_ids": np.asarray(image_ids, dtype=np.int64)[res.image],
        "ann_ids": np.asarray([arrs[m].ann_ids[p] for m, p in zip(res.image, res.person)], dtype=np.int64),
        "keypoints": kp,
        "scores": np.where(n_set > 0, conf.sum(axis=1) / np.maximum(n_set, 1), 0.0),
        "cls": res.cls, "ks": res.ks, "probabilities": res.probabilities, "v": res.v, "o": res.o,
    }


def synthesize_dataset(
    gt,
    mix: ErrorMix,
    seed: int,
    estimator_results: Sequence[dict] | None = None,
    samples: int = DEFAULT_SAMPLES,
    progress: Progress = no_progress,
) -> SyntheticPoses:
    """Synthesise an input pose, confidences and a score for every non-crowd person with keypoints of ``gt``.

    Args:
        gt: a :class:`~posefix_bench.structures.coco.CocoDataset`.
        mix: an :class:`ErrorMix` for ``gt.schema``.
        seed: non-negative integer (image streams ``default_rng((seed, image_id))``).
        estimator_results: optional COCO results (validated records) whose poses, matched to ground-truth persons
            by OKS, fill the unlabelled joints.
        samples: candidate points per keypoint and attempt.
        progress: progress wrapper over batches of images.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PosefixError(f"synthesis: seed must be a non-negative integer, got {seed!r}")
    schema = gt.schema
    _check_mix(mix, schema)
    _check_samples(samples)
    estimates = _estimates_by_image(estimator_results, schema.num_keypoints) if estimator_results else {}
    chunks = _chunks(gt, samples)
    parts = [_synthesize_chunk(gt, ids, mix, seed, estimates, samples)
             for ids in progress(chunks, total=len(chunks), desc="synthesize")]
    if not parts:
        k, c = schema.num_keypoints, len(ERROR_TYPES)
        e = np.zeros(0, np.int64)
        return SyntheticPoses(e, e, np.zeros((0, k, 3)), np.zeros(0), np.zeros((0, k), np.int64), np.zeros((0, k)),
                              np.zeros((0, k, c)), e, e, gt.category_id)
    cat = {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}
    order = np.lexsort((cat["ann_ids"], cat["image_ids"]))  # image-id then annotation-id order
    return SyntheticPoses(category_id=gt.category_id, **{f: v[order] for f, v in cat.items()})


def synthesize_results(gt, mix: ErrorMix, seed: int, estimator_results: Sequence[dict] | None = None,
                       **options) -> list[dict]:
    """COCO keypoint results of the synthetic source: one per non-crowd person with keypoints, in image-id then
    annotation-id order (see :func:`synthesize_dataset`, whose keyword ``options`` are ``samples`` and
    ``progress``)."""
    return synthesize_dataset(gt, mix, seed, estimator_results, **options).to_results()
