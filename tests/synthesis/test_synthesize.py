"""Input-pose synthesis on real coco-mini persons: regions, classes, determinism, estimator fill, other schemas."""

import json

import numpy as np
import pytest

from posefix_bench.codecs.oks import keypoint_similarity, ks_distance
from posefix_bench.codecs.taxonomy import (
    GOOD, INVERSION, JITTER, MISS, SWAP, classify_ks, labelled_counts, overlap_counts, overlap_matrix,
)
from posefix_bench.errors import PosefixError
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import save_results
from posefix_bench.structures.schema import COCO17, CROWDPOSE14
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_dataset, synthesize_poses, synthesize_results

from helpers import noisy_results


def _image_arrays(gt, image_id):
    arr = gt.gt_arrays(image_id)
    counted = ~arr.iscrowd & (labelled_counts(arr.keypoints) > 0)
    return arr, counted


def _ks(p, q, area, sigma):
    return float(keypoint_similarity(np.array([[np.sum((np.asarray(p) - q) ** 2)]]), np.array([area]),
                                     np.array([sigma]))[0, 0])


def _check_person(kp, gt_kp, areas, boxes, counted, t, schema, cls):
    """Classify every synthesised keypoint of target t with plain loops (coco-analyze's rows: every other person's
    joint j and flip(j), each with that person's area) and check its region; returns the codes."""
    flip = schema.flip_index
    lab = gt_kp[..., 2] > 0
    codes = []
    for j in range(schema.num_keypoints):
        if not lab[t, j]:
            assert kp[j, 2] == 0 and kp[j, 0] == 0 and kp[j, 1] == 0 and cls[j] == -1
            continue
        assert kp[j, 2] == 1
        sig, p = schema.sigmas[j], kp[j, :2]
        own = _ks(p, gt_kp[t, j, :2], areas[t], sig)
        sym = (_ks(p, gt_kp[t, flip[j], :2], areas[t], sig)
               if flip[j] != j and lab[t, flip[j]] else np.nan)
        others, mirrored, sources = [], [], []
        for g in range(len(gt_kp)):  # every other person is a candidate; counted overlapping ones are sources
            if g == t:
                continue
            x0, y0, w, h = boxes[t]
            a0, b0, aw, bh = boxes[g]
            overlapping = counted[g] and min(x0 + w, a0 + aw) > max(x0, a0) and min(y0 + h, b0 + bh) > max(y0, b0)
            for jj, bucket in ((j, others), (flip[j], mirrored)):
                if lab[g, jj]:
                    ks = _ks(p, gt_kp[g, jj, :2], areas[g], sig)  # on THAT person's scale
                    bucket.append(ks)
                    if overlapping:
                        sources.append(ks)
        c = int(classify_ks(own, max(others, default=np.nan), sym, max(mirrored, default=np.nan)))
        assert c == cls[j], (t, j, c, cls[j])
        if c == GOOD:
            assert own > 0.85
        elif c == JITTER:
            assert 0.5 <= own <= 0.85
        elif c == INVERSION:
            assert sym >= 0.5
        elif c == SWAP:
            assert max(sources) >= 0.5  # near an OVERLAPPING person's same or symmetric joint
        else:  # miss: far from everything, but within d(0.1) of the own, symmetric or a source joint
            assert max([own, 0 if np.isnan(sym) else sym] + others + mirrored) < 0.5
            assert max([own, 0 if np.isnan(sym) else sym] + sources) >= 0.1
        codes.append(c)
    return codes


@pytest.mark.parametrize("name", ["paper", "swap", "miss", "inversion"])
def test_synthesised_keypoints_lie_in_their_class_region(val_gt, name):
    """Every synthesised class is what the taxonomy says of the point, recomputed here joint by joint."""
    mix = get_mix(name, val_gt.schema)
    seen = set()
    for image_id in val_gt.image_ids:
        arr, counted = _image_arrays(val_gt, image_id)
        if not counted.any():
            continue
        res = synthesize_poses(arr.keypoints, arr.areas, arr.boxes, mix, np.random.default_rng((5, image_id)),
                               val_gt.schema, counted=counted)
        assert list(res.targets) == list(np.flatnonzero(counted))
        for i, t in enumerate(res.targets):
            seen.update(_check_person(res.keypoints[i], arr.keypoints, arr.areas, arr.boxes, counted, t,
                                      val_gt.schema, res.cls[i]))
    expected = {"paper": {GOOD, JITTER, INVERSION, SWAP, MISS}, "swap": {GOOD, SWAP}, "miss": {GOOD, MISS},
                "inversion": {GOOD, INVERSION}}[name]
    assert seen == expected


def _scene():
    """Two overlapping persons with mirrored arms and a third far away; COCO-17 layout, areas 10^4."""
    k = COCO17.num_keypoints
    gt = np.zeros((3, k, 3))
    base = np.array([[50, 20], [45, 15], [55, 15], [40, 18], [60, 18], [35, 40], [65, 40], [30, 60], [70, 60],
                     [28, 80], [72, 80], [42, 90], [58, 90], [42, 120], [58, 120], [42, 150], [58, 150]], float)
    gt[0, :, :2], gt[0, :, 2] = base, 2
    gt[1, :, :2], gt[1, :, 2] = base + [30, 0], 2
    gt[2, :, :2], gt[2, :, 2] = base + [1000, 0], 2
    boxes = np.array([[25, 10, 50, 145], [55, 10, 50, 145], [1025, 10, 50, 145]], float)
    return gt, np.full(3, 1e4), boxes


def test_empty_regions_drop_out_and_renormalise():
    gt, areas, boxes = _scene()
    rng = np.random.default_rng(0)
    # the lone person (index 2) overlaps nobody: no swap; its nose has no partner: no inversion
    res = synthesize_poses(gt, areas, boxes, get_mix("paper", COCO17), rng, COCO17, targets=[0, 2])
    assert res.o.tolist() == [1, 0]
    p = res.probabilities
    assert (p[1, :, SWAP] == 0).all() and (p[0, 5:, SWAP] > 0).all()
    assert p[0, 0, INVERSION] == 0 and (np.delete(p[0, :, INVERSION], [0, 5]) > 0).all()
    # person 0's right shoulder, the mirror of its left shoulder (5), lies on person 1's left shoulder, at the same
    # area: person 1's row comes first in coco-analyze's order, so every point near it is a swap; no inversion
    assert p[0, 5, INVERSION] == 0 and (gt[0, 6, :2] == gt[1, 5, :2]).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)
    mix = get_mix("paper", COCO17).probabilities(res.v, res.o)
    np.testing.assert_allclose(p[1, 5], mix[1, 5] * [1, 1, 1, 0, 1] / (1 - mix[1, 5, SWAP]))
    # a swap-only mix cannot swap the lone person: all good; the overlapping one gets swaps
    many = [synthesize_poses(gt, areas, boxes, get_mix("swap", COCO17), np.random.default_rng(s), COCO17,
                             targets=[0, 2]) for s in range(20)]
    cls = np.stack([r.cls for r in many])
    assert (cls[:, 1] == GOOD).all() and (cls[:, 0] == SWAP).any()
    # an unlabelled symmetric partner removes the inversion region of that joint
    gt2 = gt.copy()
    gt2[0, COCO17.index("right_wrist"), 2] = 0
    r2 = synthesize_poses(gt2, areas, boxes, get_mix("inversion", COCO17), np.random.default_rng(1), COCO17,
                          targets=[0])
    lw = COCO17.index("left_wrist")
    assert r2.probabilities[0, lw, INVERSION] == 0 and r2.cls[0, lw] == GOOD
    assert r2.cls[0, COCO17.index("right_wrist")] == -1 and r2.keypoints[0, COCO17.index("right_wrist"), 2] == 0


def test_swaps_lie_on_the_neighbours_scale():
    """A target 16 times the area of its overlapping neighbour: every swap lies within d(0.5) of a neighbour's joint
    measured with the NEIGHBOUR's area (where the diagnosis calls it a swap), a quarter of the target's d(0.5)."""
    gt, _, boxes = _scene()
    areas = np.array([16e4, 1e4, 1e4])
    r_small = ks_distance(0.5, 1e4, COCO17.sigma_array)
    flip, n = COCO17.flip_index, 0
    for seed in range(10):
        res = synthesize_poses(gt, areas, boxes, get_mix("swap", COCO17), np.random.default_rng(seed), COCO17,
                               targets=[0])
        _check_person(res.keypoints[0], gt, areas, boxes, np.ones(3, bool), 0, COCO17, res.cls[0])
        for j in np.flatnonzero(res.cls[0] == SWAP):
            d = np.linalg.norm(gt[1, [j, flip[j]], :2] - res.keypoints[0, j, :2], axis=-1).min()
            assert d <= r_small[j] * (1 + 1e-9), (j, d, r_small[j])
            n += 1
    assert n > 20


def _class_at(q, gt_kp, areas, t, j, schema):
    """The diagnosis's class of a keypoint of person t, joint j placed at q, with plain loops."""
    flip, lab = schema.flip_index, gt_kp[..., 2] > 0
    sig = schema.sigmas[j]
    own = _ks(q, gt_kp[t, j, :2], areas[t], sig)
    sym = _ks(q, gt_kp[t, flip[j], :2], areas[t], sig) if flip[j] != j and lab[t, flip[j]] else np.nan
    rows = [[_ks(q, gt_kp[g, jj, :2], areas[g], sig) for g in range(len(gt_kp)) if g != t and lab[g, jj]]
            for jj in (j, flip[j])]
    return int(classify_ks(own, max(rows[0], default=np.nan), sym, max(rows[1], default=np.nan)))


def test_inversion_and_swap_exist_exactly_where_their_centre_has_their_class():
    """Persons on a coarse grid, so that joints often share a spot: an inversion (swap) is possible for a joint
    exactly when its symmetric joint (some overlapping person's same or symmetric joint), as a point, is diagnosed
    as an inversion (a swap), with the tie order of coco-analyze's rows."""
    schema, rng = COCO17, np.random.default_rng(3)
    k = schema.num_keypoints
    seen = {INVERSION: [0, 0], SWAP: [0, 0]}  # [possible, impossible although there is a centre]
    for g_n in (2, 3) * 8:
        gt = np.concatenate([rng.integers(0, 2, (g_n, k, 2)) * 3.0, rng.choice([0, 2], (g_n, k, 1), p=[0.1, 0.9])], -1)
        areas = rng.choice([400.0, 900.0], g_n)
        boxes = np.tile([0.0, 0.0, 20.0, 20.0], (g_n, 1))  # everybody overlaps everybody
        lab = gt[..., 2] > 0
        for name, code in (("inversion", INVERSION), ("swap", SWAP)):
            res = synthesize_poses(gt, areas, boxes, get_mix(name, schema), np.random.default_rng(0), schema)
            for i, t in enumerate(res.targets):
                for j in np.flatnonzero(lab[t]):
                    if code == INVERSION:
                        fj = schema.flip_index[j]
                        centres = [gt[t, fj, :2]] if fj != j and lab[t, fj] else []
                    else:
                        centres = [gt[g, jj, :2] for g in range(g_n) for jj in {j, schema.flip_index[j]}
                                   if g != t and lab[g, jj]]
                    expected = any(_class_at(q, gt, areas, t, j, schema) == code for q in centres)
                    assert (res.probabilities[i, j, code] > 0) == expected, (name, t, j)
                    seen[code][0 if expected else 1] += bool(centres)
    assert min(min(v) for v in seen.values()) > 20, seen  # both outcomes happen for both classes


def test_same_seed_same_bytes_other_seed_differs(val_gt, tmp_path):
    mix = get_mix("paper", val_gt.schema)
    paths = []
    for i, seed in enumerate((7, 7, 8)):
        paths.append(save_results(tmp_path / f"r{i}.json", synthesize_results(val_gt, mix, seed)))
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c
    recs = json.loads(a)
    assert len(recs) == 91  # every non-crowd person with keypoints of coco-mini val, once
    ann = [a["id"] for _, a in val_gt.persons()]
    syn = synthesize_dataset(val_gt, mix, 7)
    assert sorted(syn.ann_ids.tolist()) == sorted(ann) and syn.image_ids.tolist() == sorted(syn.image_ids.tolist())
    with pytest.raises(PosefixError, match="seed must be a non-negative integer"):
        synthesize_results(val_gt, mix, -1)


def test_each_image_has_its_own_stream(val_gt):
    """A person's pose depends on (seed, image id) only, not on which other images are synthesised."""
    mix = get_mix("paper", val_gt.schema)
    syn = synthesize_dataset(val_gt, mix, 3)
    image_id = int(np.argmax(np.bincount(syn.image_ids)))  # the image with the most persons
    arr, counted = _image_arrays(val_gt, image_id)
    alone = synthesize_poses(arr.keypoints, arr.areas, arr.boxes, mix, np.random.default_rng((3, image_id)),
                             val_gt.schema, counted=counted)
    rows = syn.image_ids == image_id
    assert rows.sum() >= 3
    np.testing.assert_array_equal(alone.keypoints[..., :2], syn.keypoints[rows][..., :2])
    np.testing.assert_array_equal(alone.cls, syn.cls[rows])


def test_unset_and_estimator_filled_joints(val_gt):
    mix = get_mix("paper", val_gt.schema)
    plain = synthesize_dataset(val_gt, mix, 2)
    lab = plain.cls >= 0
    assert (plain.keypoints[~lab] == 0).all()  # (0, 0, 0): absent under the default policy
    assert (plain.keypoints[lab][:, 2] > 0).all()
    est = noisy_results(val_gt, seed=1, drop=0.0, extra=0.0)
    filled = synthesize_dataset(val_gt, mix, 2, estimator_results=est)
    np.testing.assert_array_equal(filled.keypoints[lab], plain.keypoints[lab])  # labelled joints unchanged
    np.testing.assert_array_equal(filled.cls, plain.cls)
    by_image = {}
    for r in est:
        by_image.setdefault(r["image_id"], []).append(np.asarray(r["keypoints"]).reshape(-1, 3))
    n_filled = 0
    for i in range(len(filled)):
        new = ~lab[i] & (filled.keypoints[i, :, 2] > 0)
        if not new.any():
            continue
        # the filled keypoints are one estimator pose's keypoints, with its confidences
        match = [e for e in by_image[int(filled.image_ids[i])] if np.array_equal(e[new], filled.keypoints[i, new])]
        assert match
        n_filled += int(new.sum())
    assert n_filled > 0.9 * (~lab).sum()
    assert (filled.scores != plain.scores).any()


def test_confidences_are_informative_but_imperfect(train_gt):
    syn = synthesize_dataset(train_gt, get_mix("paper", train_gt.schema), 0)
    lab = syn.cls >= 0
    conf, cls = syn.keypoints[..., 2][lab], syn.cls[lab]
    assert ((conf > 0) & (conf < 1)).all()
    mean = {c: conf[cls == c].mean() for c in (GOOD, JITTER, INVERSION, SWAP, MISS)}
    assert mean[GOOD] > mean[JITTER] > max(mean[INVERSION], mean[SWAP]) > mean[MISS]
    # imperfect: ranking good above non-good keypoints by confidence is better than chance but not perfect
    good, bad = conf[cls == GOOD], conf[cls != GOOD]
    auc = (good[:, None] > bad[None, :]).mean()
    assert 0.7 < auc < 0.97
    # instance score: mean confidence of the person's set keypoints
    n_set = (syn.keypoints[..., 2] > 0).sum(1)
    np.testing.assert_allclose(syn.scores, syn.keypoints[..., 2].sum(1) / n_set)


def _to_crowdpose(gt_kp):
    """COCO-17 persons -> CrowdPose-14 (12 shared joints by name; neck = mid-shoulders, top_head = nose + up)."""
    out = np.zeros((len(gt_kp), 14, 3))
    for j, name in enumerate(CROWDPOSE14.keypoints[:12]):
        out[:, j] = gt_kp[:, COCO17.index(name)]
    ls, rs, nose = (gt_kp[:, COCO17.index(n)] for n in ("left_shoulder", "right_shoulder", "nose"))
    both = (ls[:, 2] > 0) & (rs[:, 2] > 0)
    out[:, 13, :2] = (ls[:, :2] + rs[:, :2]) / 2
    out[:, 13, 2] = np.where(both, 2, 0)
    out[:, 12, :2] = nose[:, :2] - [0, 15]
    out[:, 12, 2] = nose[:, 2]
    out[out[..., 2] == 0] = 0
    return out


def test_crowdpose_schema(train_gt):
    mix = get_mix("paper", CROWDPOSE14)
    counts = np.zeros(5, int)
    for image_id in train_gt.image_ids:
        arr, counted = _image_arrays(train_gt, image_id)
        kp = _to_crowdpose(arr.keypoints)
        counted = counted & (kp[..., 2] > 0).any(1)
        if not counted.any():
            continue
        res = synthesize_poses(kp, arr.areas, arr.boxes, mix, np.random.default_rng(image_id), CROWDPOSE14,
                               counted=counted)
        assert res.keypoints.shape[1:] == (14, 3)
        for i, t in enumerate(res.targets):
            for c in _check_person(res.keypoints[i], kp, arr.areas, arr.boxes, counted, t, CROWDPOSE14, res.cls[i]):
                counts[c] += 1
    assert (counts > 0).all(), counts


def test_custom_schema_end_to_end(val_gt_path, tmp_path):
    """A five-keypoint layout read from a COCO file's category (with sigmas) synthesises like COCO-17."""
    data = json.loads(val_gt_path.read_text())
    names = ["nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip"]
    idx = [COCO17.index(n) for n in names]
    cat = {"id": 1, "name": "person", "keypoints": names, "skeleton": [[2, 3], [4, 5]],
           "sigmas": [COCO17.sigmas[i] for i in idx]}
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)[idx]
        a["keypoints"] = kp.reshape(-1).tolist()
        a["num_keypoints"] = int((kp[:, 2] > 0).sum())
    data["categories"] = [cat]
    path = tmp_path / "person_keypoints_custom.json"
    path.write_text(json.dumps(data))
    gt = CocoDataset(path)
    assert gt.schema.num_keypoints == 5 and gt.schema.flip_pairs == ((1, 2), (3, 4))
    syn = synthesize_dataset(gt, get_mix("paper", gt.schema), 0)
    assert syn.keypoints.shape[1:] == (5, 3) and len(syn) == sum(1 for _ in gt.persons())
    lab = syn.cls >= 0
    assert set(np.unique(syn.cls[lab]).tolist()) >= {GOOD, JITTER, MISS}
    np.testing.assert_allclose(syn.probabilities[lab].sum(-1), 1.0)


def test_bad_inputs_raise(val_gt):
    mix = get_mix("paper", COCO17)
    gt, areas, boxes = _scene()
    rng = np.random.default_rng(0)
    with pytest.raises(PosefixError, match="expected \\(G, 17, 3\\)"):
        synthesize_poses(gt[:, :5], areas, boxes, mix, rng, COCO17)
    for bad in ([3], [0, 0], [-1]):
        with pytest.raises(PosefixError, match="must be distinct indices of the 3 persons"):
            synthesize_poses(gt, areas, boxes, mix, rng, COCO17, targets=bad)
    with pytest.raises(PosefixError, match="estimator keypoints of shape"):
        synthesize_poses(gt, areas, boxes, mix, rng, COCO17, targets=[0], estimator_keypoints=np.zeros((2, 17, 3)))
    with pytest.raises(PosefixError, match="for schema crowdpose14, not coco17"):
        synthesize_dataset(val_gt, get_mix("paper", CROWDPOSE14), 0)
    empty = synthesize_poses(gt[:0], areas[:0], boxes[:0], mix, rng, COCO17)
    assert empty.keypoints.shape == (0, 17, 3)


def test_batched_overlaps_equal_per_image_counts(train_gt):
    """The sampler's padded (I, G, G) overlap relation counts what ``overlap_counts`` counts, image by image."""
    arrs = [train_gt.gt_arrays(i) for i in train_gt.image_ids]
    g = max(len(a) for a in arrs)
    boxes, valid = np.zeros((len(arrs), g, 4)), np.zeros((len(arrs), g), bool)
    for m, a in enumerate(arrs):
        boxes[m, :len(a)] = a.boxes
        valid[m, :len(a)] = ~a.iscrowd & (labelled_counts(a.keypoints) > 0)
    mat = overlap_matrix(boxes, valid)
    assert mat.sum() > 50
    for m, a in enumerate(arrs):
        np.testing.assert_array_equal(mat[m, :len(a)].sum(-1), overlap_counts(a.boxes, valid[m, :len(a)]))
