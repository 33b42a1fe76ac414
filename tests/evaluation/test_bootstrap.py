"""The paired bootstrap against a brute-force version: pycocotools on each resampled image list.

The brute force builds, for each draw, a ground truth and results in which every drawn copy of an image is a new
image (new, consecutive image ids in image order; new annotation ids) and runs ``evaluate(...,
evaluator="pycocotools")`` on it; :func:`resample_ap` must give its AP to 1e-9 for every draw. Inputs: coco-mini val
with the three coco-analyze reference results files, and seeded results with score ties inside images, absent
keypoints and detections on crowds (``varied_results``), also on a person subset (the others ignore regions).
"""

import json

import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.evaluation.bootstrap import (
    _groups, check_bootstrap, interval, match_table, paired_interval, resample_ap, resample_counts, resample_sums,
)  # fmt: skip
from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.structures.coco import CocoDataset
from posefix_bench.structures.results import load_results

from evaluation.parity_helpers import varied_results

REFERENCE = ("mediapipe_cocomini_val.json", "synthetic_paper_s1000.json", "noisy4x_cocomini_val.json")
DRAWS = 6


def _brute_force(gt: CocoDataset, results, image_ids, counts, person_ids, folder, absent_policy="absent"):
    """AP of pycocotools on the drawn images, each copy a new image."""
    data = gt.coco.dataset
    by_image = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    res_by_image = {}
    for r in results:
        res_by_image.setdefault(r["image_id"], []).append(r)
    images_info = {im["id"]: im for im in data["images"]}
    images, anns, res, subset = [], [], [], set()
    keep = set(person_ids) if person_ids is not None else None
    for image_id, c in zip(image_ids, counts):
        for _ in range(int(c)):
            new_id = len(images) + 1
            images.append(dict(images_info[int(image_id)], id=new_id))
            for a in by_image.get(int(image_id), []):
                new_ann = len(anns) + 1
                anns.append(dict(a, id=new_ann, image_id=new_id))
                if keep is not None and a["id"] in keep:
                    subset.add(new_ann)
            res += [dict(r, image_id=new_id) for r in res_by_image.get(int(image_id), [])]
    path = folder / "person_keypoints_draw.json"
    path.write_text(json.dumps(dict(data, images=images, annotations=anns)))
    drawn = CocoDataset(path)
    rec = evaluate(drawn, res, absent_policy, image_ids=[im["id"] for im in images],
                   person_ids=None if keep is None else sorted(subset), evaluator="pycocotools")
    return rec["metrics"]["AP"]


def _check_draws(gt, results, tmp_path, person_ids=None, absent_policy="absent", seed=3):
    table = match_table(gt, results, absent_policy, person_ids=person_ids)
    counts = resample_counts(len(table.image_ids), DRAWS, seed)
    fast = resample_ap(table, counts)
    ones = resample_ap(table, np.ones((1, len(table.image_ids)), dtype=np.int64))[0]
    ref = evaluate(gt, results, absent_policy, person_ids=person_ids, evaluator="pycocotools")["metrics"]["AP"]
    assert ones == pytest.approx(ref, abs=1e-12)  # the identity draw is pycocotools' AP
    for b in range(DRAWS):
        slow = _brute_force(gt, results, table.image_ids, counts[b], person_ids, tmp_path, absent_policy)
        assert fast[b] == pytest.approx(slow, abs=1e-9), f"draw {b}"
    assert len(set(np.round(fast, 12))) > 1  # the draws differ


@pytest.mark.parametrize("name", REFERENCE)
def test_draws_equal_pycocotools_on_resampled_images_reference(val_gt, reference_dir, tmp_path, name):
    results = load_results(reference_dir / name, val_gt)
    _check_draws(val_gt, results, tmp_path, absent_policy="pycocotools")


def test_draws_equal_pycocotools_with_ties_absent_and_a_subset(val_gt, tmp_path):
    results = varied_results(val_gt, seed=5, per_person=1.5, absent=0.1, ties=True)
    scores = [r["score"] for r in results]
    assert len(set(scores)) < len(scores) / 10  # many ties, inside images too: the general path
    assert (_groups(match_table(val_gt, results))[2] > 1).any()
    _check_draws(val_gt, results, tmp_path)
    persons = sorted(a["id"] for a in val_gt.coco.dataset["annotations"] if a.get("num_keypoints", 0) > 0)
    subset = persons[::3]
    _check_draws(val_gt, results, tmp_path, person_ids=subset, seed=4)


def test_both_paths_agree_without_ties(val_gt, reference_dir):
    """Without equally scored detections in an image, the weighted path (each detection once, weighted by its
    image's copies) gives what the general path (every copy) gives."""
    from posefix_bench.evaluation import bootstrap

    tables = [match_table(val_gt, load_results(reference_dir / n, val_gt), "pycocotools") for n in REFERENCE]
    tables.append(match_table(val_gt, varied_results(val_gt, seed=2, absent=0.0, ties=False)))
    for table in tables:
        assert (bootstrap._groups(table)[2] == 1).all()  # no ties: the weighted path is taken
        counts = resample_counts(len(table.image_ids), 40, 11)
        fast, general = resample_ap(table, counts), resample_ap(table, counts, weighted=False)
        np.testing.assert_allclose(fast, general, rtol=0, atol=1e-12)


def test_same_seed_same_numbers_and_pairing(val_gt, reference_dir):
    a = match_table(val_gt, load_results(reference_dir / REFERENCE[0], val_gt), "pycocotools")
    b = match_table(val_gt, load_results(reference_dir / REFERENCE[1], val_gt), "pycocotools")
    one = paired_interval(a, b, resamples=200, seed=7)
    two = paired_interval(a, b, resamples=200, seed=7)
    assert {k: v for k, v in one.items() if k != "seconds"} == {k: v for k, v in two.items() if k != "seconds"}
    assert one["ci95"] != paired_interval(a, b, resamples=200, seed=8)["ci95"]
    ap_a = evaluate(val_gt, load_results(reference_dir / REFERENCE[0], val_gt), "pycocotools")["metrics"]["AP"]
    ap_b = evaluate(val_gt, load_results(reference_dir / REFERENCE[1], val_gt), "pycocotools")["metrics"]["AP"]
    assert one["base"]["value"] == pytest.approx(ap_a, abs=1e-12)
    assert one["other"]["value"] == pytest.approx(ap_b, abs=1e-12)
    assert one["delta"] == pytest.approx(ap_b - ap_a, abs=1e-12)
    lo, hi = one["ci95"]
    assert lo < one["delta"] < hi
    # the delta's interval is the difference on shared draws, not the difference of the two sides' intervals
    counts = resample_counts(len(a.image_ids), 200, 7)
    diff = resample_ap(b, counts) - resample_ap(a, counts)
    assert one["ci95"] == interval(diff)
    # a results list against itself: every draw's difference is 0
    same = paired_interval(a, a, resamples=50, seed=0)
    assert same["ci95"] == [0.0, 0.0] and same["delta"] == 0.0


def test_counts_and_sums():
    c = resample_counts(5, 4, seed=1)
    assert c.shape == (4, 5) and (c.sum(axis=1) == 5).all()
    assert np.array_equal(c, resample_counts(5, 4, seed=1)) and not np.array_equal(c, resample_counts(5, 4, seed=2))
    per_image = np.arange(10.0).reshape(5, 2)
    assert np.array_equal(resample_sums(per_image, c), c @ per_image)
    assert interval(np.array([np.nan, np.nan])) is None


def test_bad_settings_and_mismatched_images(val_gt, reference_dir):
    assert check_bootstrap(None) == {"resamples": 1000, "seed": 0}
    assert check_bootstrap({"resamples": 50, "seed": 3}) == {"resamples": 50, "seed": 3}
    for bad in ({"resamples": 0}, {"seed": -1}, {"resamples": 2.5}, {"draws": 10}):
        with pytest.raises(PosefixError, match="bootstrap settings"):
            check_bootstrap(bad)
    results = load_results(reference_dir / REFERENCE[0], val_gt)
    a = match_table(val_gt, results, "pycocotools")
    b = match_table(val_gt, results, "pycocotools", image_ids=val_gt.image_ids[:10])
    with pytest.raises(PosefixError, match="different images"):
        paired_interval(a, b)
