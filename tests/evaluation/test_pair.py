"""One pass over a (results, refined) pair: the same numbers as separate evaluations, crops, subset."""

import numpy as np

from posefix_bench.evaluation.coco_eval import evaluate
from posefix_bench.evaluation.diagnosis import classify, diagnose
from posefix_bench.evaluation.pair import analyse_pair, select_crops
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results

WORSE = {"base": "paper", "scale": {"miss": 3.0, "swap": 3.0}, "name": "worse"}


def _pair(gt):
    results = synthesize_results(gt, get_mix("paper", gt.schema), seed=1)
    refined = synthesize_results(gt, get_mix(WORSE, gt.schema), seed=2)
    return results, refined


def test_one_pass_gives_the_diagnosis_and_the_subset_of_separate_calls(val_gt):
    results, refined = _pair(val_gt)
    ids = [a["id"] for a in val_gt.coco.dataset["annotations"] if a.get("num_keypoints", 0) >= 10][:20]
    rec = analyse_pair(val_gt, results, refined, subset_ids=ids)
    assert rec["diagnosis"] == diagnose(val_gt, results, refined, ap_impact=False)
    occ = rec["occluded"]
    assert occ["persons"] == len(ids)
    assert occ["ap_before"] == evaluate(val_gt, results, person_ids=ids)["metrics"]["AP"]
    assert occ["ap_after"] == evaluate(val_gt, refined, person_ids=ids)["metrics"]["AP"]
    assert occ["lower_fixed"] + occ["lower_good_before"] - occ["lower_broken"] == occ["lower_good_after"]
    assert analyse_pair(val_gt, results, None)["occluded"] is None and analyse_pair(val_gt, results)["crops"] == []


def test_crops_are_the_biggest_ks_changes_with_what_drawing_them_takes(val_gt):
    results, refined = _pair(val_gt)
    chosen = select_crops(classify(val_gt, results), classify(val_gt, refined), results, count=6)
    change = [c["ks_after"] - c["ks_before"] for c in chosen]
    kinds = [c["kind"] for c in chosen]
    assert len(chosen) == 6 and "break" in kinds and "fix" in kinds
    fixes = [d for d, k in zip(change, kinds) if k == "fix"]
    breaks = [d for d, k in zip(change, kinds) if k == "break"]
    assert all(d > 0 for d in fixes) and all(d < 0 for d in breaks)
    assert fixes == sorted(fixes, reverse=True) and breaks == sorted(breaks)
    crops = analyse_pair(val_gt, results, refined, crops=6)["crops"]
    assert [c["ann_id"] for c in crops] == [c["ann_id"] for c in chosen]
    first = crops[0]
    poses = np.asarray(first["poses"])
    assert poses.shape == (3, val_gt.schema.num_keypoints, 3)
    ann = val_gt.coco.anns[first["ann_id"]]
    assert np.allclose(poses[0].ravel(), ann["keypoints"]) and first["bbox"] == list(map(float, ann["bbox"]))
    assert first["image"] == str(val_gt.image_path(first["image_id"]))
    kp = np.asarray(results[first["result_index"]]["keypoints"]).reshape(-1, 3)
    present = poses[1, :, 2] > 0
    assert np.allclose(poses[1, present, :2], kp[present, :2])


def test_the_pass_bootstraps_the_pair_on_shared_draws(val_gt):
    from posefix_bench.evaluation.bootstrap import interval, match_table, paired_interval

    results, refined = _pair(val_gt)
    ids = [a["id"] for a in val_gt.coco.dataset["annotations"] if a.get("num_keypoints", 0) >= 10][:20]
    rec = analyse_pair(val_gt, results, refined, subset_ids=ids, bootstrap={"resamples": 300, "seed": 1})
    boot, samples = rec["bootstrap"], rec["bootstrap_samples"]
    diag = rec["diagnosis"]
    assert boot["resamples"] == 300 and boot["seed"] == 1 and boot["seconds"] > 0
    # the point values are pycocotools' (the diagnosis' AP and the subset's), the interval that of the pair
    assert boot["all"]["base"]["value"] == diag["ap"]["AP"]
    assert boot["all"]["other"]["value"] == diag["refined"]["ap"]["AP"]
    assert boot["occluded"]["base"]["value"] == rec["occluded"]["ap_before"]
    assert boot["occluded"]["other"]["value"] == rec["occluded"]["ap_after"]
    alone = paired_interval(match_table(val_gt, results), match_table(val_gt, refined), resamples=300, seed=1)
    assert boot["all"]["ci95"] == alone["ci95"] and boot["all"]["images"] == alone["images"] == len(val_gt.image_ids)
    assert boot["all"]["ci95"][1] < 0  # the worse mix loses AP on every draw's bulk
    assert boot["occluded"]["images"] == len({val_gt.coco.anns[i]["image_id"] for i in ids})
    assert samples["all_before"].shape == (300,) and samples["fixed"].shape == (300, 4)
    # per confidence bin: the identity counts are the diagnosis' transitions, the intervals those of the draws
    for i, (label, per) in enumerate(boot["per_confidence"].items()):
        tr = diag["transitions"]["per_confidence"][label]
        assert per["fixed"] == tr["fixed_total"] and per["broken"] == tr["broken"]["broken"]
        assert per["net"] == tr["net_fixed"] and per["fixed_ci95"] == interval(samples["fixed"][:, i])
    assert analyse_pair(val_gt, results, refined)["bootstrap"] is None
