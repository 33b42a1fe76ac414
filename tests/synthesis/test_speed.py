"""Synthesis speed (pytest-benchmark): 10,000 people with the vectorised synthesis, and a straightforward per-joint
rejection loop (the original PoseFix way) on a subset for the per-person ratio.

``make bench-throughput`` (or ``pytest tests/synthesis/test_speed.py --benchmark-enable``) times both; compare
their per-person times (``extra_info["persons"]``). In the ordinary test run each body runs once, checked.
"""

import json
import math

import numpy as np
import pytest

from posefix_bench.codecs.oks import AREA_EPS, keypoint_similarity, ks_distance
from posefix_bench.codecs.taxonomy import (
    ERROR_TYPES, GOOD, GOOD_KS, INVERSION, JITTER, JITTER_KS, MISS, MISS_KS, SWAP, classify_ks, labelled_counts,
    overlap_counts,
)
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import DEFAULT_SAMPLES, synthesize_dataset, synthesize_poses

N_PEOPLE = 10_000
N_LOOP = 300
N_ORIGINAL = 60


def _people(ann) -> bool:
    return not ann.get("iscrowd", 0) and ann.get("num_keypoints", 0) > 0


@pytest.fixture(scope="module")
def big_gt(val_gt_path, train_gt_path, tmp_path_factory):
    """A COCO file of exactly N_PEOPLE persons: coco-mini val + train images, repeated under new ids."""
    sets = [json.loads(p.read_text()) for p in (val_gt_path, train_gt_path)]
    images, anns, n, rep = [], [], 0, 0
    while n < N_PEOPLE:
        for data in sets:
            for img in data["images"]:
                mine = [a for a in data["annotations"] if a["image_id"] == img["id"]]
                mine = mine[: len(mine) - max(0, n + sum(map(_people, mine)) - N_PEOPLE)]
                if n >= N_PEOPLE or not mine:
                    continue
                new_id = rep * 10_000_000 + img["id"]
                images.append(dict(img, id=new_id))
                anns += [dict(a, id=rep * 10_000_000 + a["id"], image_id=new_id) for a in mine]
                n += sum(map(_people, mine))
        rep += 1
    path = tmp_path_factory.mktemp("big") / "person_keypoints_big.json"
    path.write_text(json.dumps(dict(sets[0], images=images, annotations=anns)))
    return CocoDataset(path)


def test_vectorised_synthesis_of_10000_people(benchmark, big_gt):
    mix = get_mix("paper", big_gt.schema)
    syn = benchmark.pedantic(synthesize_dataset, args=(big_gt, mix, 0), rounds=3, iterations=1)
    benchmark.extra_info["persons"] = len(syn)
    assert len(syn) == N_PEOPLE
    lab = syn.cls >= 0
    freq = np.bincount(syn.cls[lab], minlength=5) / lab.sum()
    assert 0.6 < freq[GOOD] < 0.75 and (freq[1:] > 0.01).all()


@pytest.fixture(scope="module")
def workload(big_gt):
    """The persons of the first images of ``big_gt``, image by image: (arrays, counted, targets, stream)."""
    out = []
    for image_id in big_gt.image_ids:
        arr = big_gt.gt_arrays(image_id)
        counted = ~arr.iscrowd & (labelled_counts(arr.keypoints) > 0)
        if counted.any():
            out.append((arr, counted, np.flatnonzero(counted), (0, image_id)))
    return out


def _per_image(work, mix, schema):
    return [synthesize_poses(arr.keypoints, arr.areas, arr.boxes, mix, np.random.default_rng(key), schema,
                             targets=targets, counted=counted).cls for arr, counted, targets, key in work]


def test_per_image_calls(benchmark, workload, big_gt):
    """``synthesize_poses`` called image by image (as the training data pipeline does) on N_LOOP persons."""
    work = _first_persons(workload, N_LOOP)
    mix = get_mix("paper", big_gt.schema)
    cls = benchmark.pedantic(_per_image, args=(work, mix, big_gt.schema), rounds=3, iterations=1)
    benchmark.extra_info["persons"] = sum(len(c) for c in cls)
    assert benchmark.extra_info["persons"] == N_LOOP


def _first_persons(workload, n_max):
    work, n = [], 0
    for arr, counted, targets, key in workload:
        if n >= n_max:
            break
        work.append((arr, counted, targets[: n_max - n], key))
        n += len(work[-1][2])
    return work


# -- straightforward references, joint by joint ------------------------------------------------------------------
def _joint_context(kp, areas, boxes, counted, t, j, schema):
    """Own joint, symmetric joint (or None), every other person's labelled j and partner as (x, y, area, mirrored),
    and the swap sources (x, y, area): candidates of overlapping counted persons whose centre is a swap."""
    flip, lab = schema.flip_index, kp[..., 2] > 0
    own = tuple(kp[t, j, :2])
    sym = tuple(kp[t, flip[j], :2]) if flip[j] != j and lab[t, flip[j]] else None
    x0, y0, w, h = boxes[t]
    others, near = [], []
    for g in range(len(kp)):
        if g == t:
            continue
        a0, b0, aw, bh = boxes[g]
        overlapping = counted[g] and min(x0 + w, a0 + aw) > max(x0, a0) and min(y0 + h, b0 + bh) > max(y0, b0)
        for jj, mirrored in ((j, False), (flip[j], True)):
            if lab[g, jj] and (jj != j or not mirrored):
                others.append((kp[g, jj, 0], kp[g, jj, 1], areas[g], mirrored))
                near.append(overlapping)
    sources = [q[:3] for q, n in zip(others, near)
               if n and _classify_point(q[0], q[1], own, sym, others, areas[t], schema.sigmas[j]) == SWAP]
    return own, sym, others, sources


def _classify_point(x, y, own, sym, others, area, sig):
    """coco-analyze's rule for one point: KS with each candidate's area, first maximum in row order."""
    def ks(q, a):
        return math.exp(-((x - q[0]) ** 2 + (y - q[1]) ** 2) / (2 * (a + AREA_EPS) * (2 * sig) ** 2))

    k_own, k_sym = ks(own, area), (ks(sym, area) if sym else -1.0)
    k_other = max((ks(q, q[2]) for q in others if not q[3]), default=-1.0)
    k_other_sym = max((ks(q, q[2]) for q in others if q[3]), default=-1.0)
    best = max(k_own, k_other, k_sym, k_other_sym)
    if best < JITTER_KS:
        return MISS
    if k_own >= best:
        return GOOD if k_own > GOOD_KS else JITTER
    return INVERSION if k_other < best and k_sym >= best else SWAP


def _regions(own, sym, sources, area):
    """Per class: its centres as (x, y, area) and its (inner, outer) KS bounds (None: the centre itself)."""
    mine = [(own[0], own[1], area)]
    mirror = [(sym[0], sym[1], area)] if sym else []
    centres = {GOOD: mine, JITTER: mine, INVERSION: mirror, SWAP: sources, MISS: mine + mirror + sources}
    bounds = {GOOD: (None, GOOD_KS), JITTER: (GOOD_KS, JITTER_KS), INVERSION: (None, JITTER_KS),
              SWAP: (None, JITTER_KS), MISS: (JITTER_KS, MISS_KS)}
    return centres, bounds


def _radius(ks, area, sig):
    return 0.0 if ks is None else math.sqrt(-2 * (area + AREA_EPS) * (2 * sig) ** 2 * math.log(ks))


def _loop_person(kp, areas, boxes, counted, t, mix, rng, schema, tries):
    """Plain Python, first accepted point: draw a class, try one candidate point at a time. (K, 2), (K,)."""
    k_n, sig = schema.num_keypoints, schema.sigmas
    lab = kp[..., 2] > 0
    probs = mix.probabilities(np.array([lab[t].sum()]), np.array([overlap_counts(boxes, counted)[t]]))[0]
    pts, cls = np.zeros((k_n, 2)), np.full(k_n, -1)
    for j in np.flatnonzero(lab[t]):
        own, sym, others, sources = _joint_context(kp, areas, boxes, counted, t, j, schema)
        p = probs[j].copy()
        p[INVERSION] *= sym is not None and _classify_point(*sym, own, sym, others, areas[t], sig[j]) == INVERSION
        p[SWAP] *= bool(sources)
        centres, bounds = _regions(own, sym, sources, areas[t])
        while True:
            c = min(int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right")), len(ERROR_TYPES) - 1)
            point = _loop_sample(c, own, sym, others, centres[c], bounds[c], areas[t], sig[j], rng, tries)
            if point is not None or c == GOOD:
                pts[j], cls[j] = point if point is not None else own, c
                break
            p[c] = 0.0
    return pts, cls


def _loop_sample(c, own, sym, others, centres, bounds, area, sig, rng, tries):
    for _ in range(tries):
        cx, cy, ca = centres[int(rng.random() * len(centres))]
        lo, hi = (_radius(b, ca, sig) for b in bounds)  # on the centre's person's scale
        r = math.sqrt(lo * lo + rng.random() * (hi * hi - lo * lo))
        a = 2 * math.pi * rng.random()
        x, y = cx + r * math.cos(a), cy + r * math.sin(a)
        if _classify_point(x, y, own, sym, others, area, sig) == c:
            return x, y
    return None


def _original_style_person(kp, areas, boxes, counted, t, mix, rng, schema, n=500):
    """The original PoseFix scheme: for every joint, a batch of candidates in EVERY class's region (n per centre;
    4 n for misses, n / 4 for good), classes without a valid candidate drop out, then a class and one of its
    candidates are drawn. (K, 2), (K,)."""
    k_n = schema.num_keypoints
    lab = kp[..., 2] > 0
    probs = mix.probabilities(np.array([lab[t].sum()]), np.array([overlap_counts(boxes, counted)[t]]))[0]
    pts, cls = np.zeros((k_n, 2)), np.full(k_n, -1)
    sizes = {GOOD: n // 4, JITTER: n, INVERSION: n, SWAP: n, MISS: 4 * n}
    for j in np.flatnonzero(lab[t]):
        own, sym, others, sources = _joint_context(kp, areas, boxes, counted, t, j, schema)
        centres, bounds = _regions(own, sym, sources, areas[t])
        sig = schema.sigma_array[j:j + 1]
        found = {}
        for c in range(len(ERROR_TYPES)):
            if not centres[c] or probs[j, c] == 0:
                continue
            cen = np.repeat(np.asarray(centres[c], float), sizes[c], axis=0)  # (m, 3) x, y, area
            m = len(cen)
            lo, hi = (np.zeros(m) if b is None else ks_distance(np.full(m, b), cen[:, 2], sig)[:, 0] for b in bounds[c])
            r = np.sqrt(lo * lo + rng.random(m) * (hi * hi - lo * lo))
            a = 2 * np.pi * rng.random(m)
            cand = cen[:, :2] + r[:, None] * np.stack([np.cos(a), np.sin(a)], -1)

            def sim(q, area):
                d2 = ((cand - np.asarray(q[:2])) ** 2).sum(-1)[:, None]
                return keypoint_similarity(d2, np.array(area), sig)[:, 0]

            def best(mirrored):
                ks = [sim(q, q[2]) for q in others if q[3] == mirrored]
                return np.max(ks, axis=0) if ks else np.full(m, np.nan)

            ks_sym = sim(sym, areas[t]) if sym else np.full(m, np.nan)
            ok = cand[classify_ks(sim(own, areas[t]), best(False), ks_sym, best(True)) == c]
            if len(ok):
                found[c] = ok
        p = np.array([probs[j, c] if c in found else 0.0 for c in range(len(ERROR_TYPES))])
        if p.sum() == 0:
            pts[j], cls[j] = own, GOOD
            continue
        c = int(rng.choice(len(p), p=p / p.sum()))
        pts[j], cls[j] = found[c][int(rng.integers(len(found[c])))], c
    return pts, cls


def _loop(work, mix, schema, person=_loop_person, **kw):
    out = []
    for arr, counted, targets, key in work:
        rng = np.random.default_rng(key)
        for t in targets:
            out.append((arr, counted, t) + person(arr.keypoints, arr.areas, arr.boxes, counted, t, mix, rng, schema,
                                                  **kw))
    return out


def _check_reference(out, schema):
    """The references' points are classified as drawn by the shared taxonomy (so the timings compare like with
    like)."""
    flip = schema.flip_index
    for arr, counted, t, pts, cls in out:
        lab = arr.keypoints[t, :, 2] > 0

        def ks(q, area):
            return keypoint_similarity(((pts - q[..., :2]) ** 2).sum(-1), area, schema.sigma_array)

        own = ks(arr.keypoints[t], arr.areas[t])
        sym = np.where(schema.has_partner & (arr.keypoints[t, flip, 2] > 0), ks(arr.keypoints[t, flip], arr.areas[t]),
                       np.nan)
        other, other_sym = np.full(len(lab), -1.0), np.full(len(lab), -1.0)
        for g in range(len(arr.keypoints)):
            if g != t:
                q = arr.keypoints[g]
                other = np.maximum(other, np.where(q[:, 2] > 0, ks(q, arr.areas[g]), -1.0))
                other_sym = np.maximum(other_sym, np.where(q[flip, 2] > 0, ks(q[flip], arr.areas[g]), -1.0))
        np.testing.assert_array_equal(classify_ks(own, other, sym, other_sym)[lab], cls[lab])


def test_per_joint_loop_reference(benchmark, workload, val_gt):
    """The same scheme as the sampler (class first, first accepted point), one joint and one point at a time."""
    schema = val_gt.schema
    work = _first_persons(workload, N_LOOP)
    out = benchmark.pedantic(_loop, args=(work, get_mix("paper", schema), schema),
                             kwargs={"tries": 4 * DEFAULT_SAMPLES}, rounds=3, iterations=1)
    benchmark.extra_info["persons"] = len(out)
    assert len(out) == N_LOOP
    _check_reference(out[::5], schema)


def test_original_style_loop_reference(benchmark, workload, val_gt):
    """The original PoseFix scheme (hundreds of candidates in every region of every joint), joint by joint."""
    schema = val_gt.schema
    work = _first_persons(workload, N_ORIGINAL)
    out = benchmark.pedantic(_loop, args=(work, get_mix("paper", schema), schema),
                             kwargs={"person": _original_style_person}, rounds=3, iterations=1)
    benchmark.extra_info["persons"] = len(out)
    assert len(out) == N_ORIGINAL
    _check_reference(out, schema)
