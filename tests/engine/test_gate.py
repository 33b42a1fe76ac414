"""The refinement gate (issue 17): its model, its storage in checkpoints, its application in ``refine`` (gated and
ungated from one pass, ``--no-gate``, older checkpoints) and its calibration on held-out training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posefix_bench import cli
from posefix_bench.engine.calibrate import (
    ACCEPT_NONE, DEFAULT_KEEP, DEFAULT_TOLERANCE, ap_proxy, calibration_data, fit_gate, gate_rows, gate_summary,
)
from posefix_bench.engine.data import RefinerTrainSet, holdout_image_ids
from posefix_bench.engine.gate import FEATURES, Gate, KeypointEvidence, feature_matrix, fit_logistic
from posefix_bench.engine.refine import RefinePostProcessor
from posefix_bench.errors import PosefixError
from posefix_bench.models import build_refiner, save_refiner
from posefix_bench.models.checkpoint import load_refiner_and_gate, save_gate
from posefix_bench.synthesis.mixes import get_mix
from posefix_bench.synthesis.synthesize import synthesize_results

SIZE = (48, 64)


@pytest.fixture(scope="module")
def model():
    return build_refiner(dict(backbone="resnet18", head="skip", input_size=SIZE, deconv_channels=32), seed=0)


@pytest.fixture(scope="module")
def records(val_gt):
    res = synthesize_results(val_gt, get_mix("paper", val_gt.schema), seed=5)
    ids = sorted({r["image_id"] for r in res})[:4]
    return [r for r in res if r["image_id"] in ids]


def _gate(threshold: float, weights=None) -> Gate:
    f = len(FEATURES)
    w = np.zeros(f + 1) if weights is None else np.asarray(weights, np.float64)
    return Gate(FEATURES, np.zeros(f), np.ones(f), w, threshold, {"method": "test"})


# -- the model -----------------------------------------------------------------------------------------------------
def test_fit_logistic_recovers_a_known_weighted_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 2))
    p = 1 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])))
    y = (rng.random(4000) < p).astype(float)
    beta = fit_logistic(x, y, np.ones(4000), l2=0.0)
    np.testing.assert_allclose(beta, [0.5, 2.0, -1.0], atol=0.2)
    # doubling the weight of every positive sample moves the intercept by about log 2
    beta2 = fit_logistic(x, y, np.where(y > 0, 2.0, 1.0), l2=0.0)
    assert beta2[0] - beta[0] == pytest.approx(np.log(2), abs=0.1)
    assert np.array_equal(beta, fit_logistic(x, y, np.ones(4000), l2=0.0))  # deterministic


def test_features_of_no_move_and_full_agreement_are_zero():
    ev = KeypointEvidence(ref_conf=np.full((2, 3), 0.5), input_mass=np.full((2, 3), 0.5),
                          in_conf=np.array([[0.2, 1.7, 0.0], [0.5, 0.5, 0.5]]), move=np.zeros((2, 3)),
                          refinable=np.array([[True, True, False], [True, True, True]]))
    f = feature_matrix(ev)
    assert f.shape == (2, 3, len(FEATURES))
    col = {n: f[..., i] for i, n in enumerate(FEATURES)}
    assert np.allclose(col["ref_logit"], 0) and np.allclose(col["move"], 0) and np.allclose(col["agreement"], 0)
    assert col["in_conf"][0].tolist() == [0.2, 1.0, 0.0]  # clipped to [0, 1]


def test_gate_record_round_trip_and_one_line_errors():
    g = _gate(0.4, np.arange(len(FEATURES) + 1) / 10)
    back = Gate.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back.threshold == 0.4 and np.array_equal(back.weights, g.weights) and back.calibration == {"method": "test"}
    bad = [({"format": "x"}, "unsupported gate format"),
           (dict(g.to_dict(), features=["a"]), "not this version's"),
           (dict(g.to_dict(), std=[0.0] * len(FEATURES)), "positive"),
           (dict(g.to_dict(), weights=[1.0]), "'weights'"),
           (dict(g.to_dict(), threshold=None), "'threshold'")]
    for record, fragment in bad:
        with pytest.raises(PosefixError, match=fragment) as e:
            Gate.from_dict(record, source="ckpt.pth: gate")
        assert "\n" not in str(e.value) and str(e.value).startswith("ckpt.pth: gate")


# -- applying it ---------------------------------------------------------------------------------------------------
def test_one_pass_gives_ungated_and_gated_records(val_gt, records, model):
    plain = RefinePostProcessor(model, meta={"trained": True}, gate=False).refine(val_gt, records)
    # a gate that accepts only keypoints whose input confidence is below 0.6 (weights on the in_conf feature)
    w = np.zeros(len(FEATURES) + 1)
    w[1 + FEATURES.index("in_conf")] = -50.0
    w[0] = 30.0
    post = RefinePostProcessor(model, meta={"trained": True}, gate=_gate(0.5, w))
    out = post.refine_detailed(val_gt, records)
    assert json.dumps(out.ungated) == json.dumps(plain)  # the ungated reading is exactly the gate-less refine
    assert out.records is out.gated and post.refine(val_gt, records) == out.gated
    k = 17
    kp = np.asarray([r["keypoints"] for r in records]).reshape(-1, k, 3)
    ref = np.asarray([r["keypoints"] for r in plain]).reshape(-1, k, 3)
    gated = np.asarray([r["keypoints"] for r in out.gated]).reshape(-1, k, 3)
    expect = out.evidence.refinable & (kp[..., 2] < 0.6)
    assert np.array_equal(out.accept, expect) and 0 < expect.sum() < out.evidence.refinable.sum()
    assert np.array_equal(gated, np.where(expect[..., None], ref, kp))
    assert [r["refine_accepted"] for r in out.gated] == expect.astype(int).tolist()
    # evidence: the move is 0 exactly where nothing moved, confidences in [0, 1]
    ev = out.evidence
    assert ((ev.ref_conf[ev.refinable] > 0) & (ev.ref_conf[ev.refinable] <= 1)).all()
    assert (ev.input_mass[ev.refinable] >= 0).all() and (ev.move[ev.refinable] >= 0).all()
    # thresholds above every probability keep the input; at 0 every refinable keypoint is refined
    none = RefinePostProcessor(model, meta={"trained": True}, gate=_gate(ACCEPT_NONE)).refine_detailed(val_gt, records)
    assert np.array_equal(np.asarray([r["keypoints"] for r in none.gated]).reshape(-1, k, 3), kp)
    every = RefinePostProcessor(model, meta={"trained": True}, gate=_gate(0.0)).refine_detailed(val_gt, records)
    assert np.array_equal(every.accept, every.evidence.refinable)
    assert [r["keypoints"] for r in every.gated] == [r["keypoints"] for r in plain]


def test_refine_image_is_gated_too(val_gt, records, model):
    image_id = records[0]["image_id"]
    kp = np.asarray([r["keypoints"] for r in records if r["image_id"] == image_id]).reshape(-1, 17, 3)
    post = RefinePostProcessor(model, meta={"trained": True}, gate=_gate(ACCEPT_NONE))
    refined, ok = post.refine_image(val_gt.read_image(image_id), kp)
    assert ok.all() and np.array_equal(refined, kp)
    d = post.refine_image_detailed(val_gt.read_image(image_id), kp)
    assert not np.array_equal(d["ungated"], kp) and not d["accept"].any()


# -- checkpoints and the command -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_checkpoint_gate_default_no_gate_flag_and_older_checkpoints(tmp_path, val_gt, val_gt_path, records, model,
                                                                    capsys):
    old = tmp_path / "old.pth"
    save_refiner(old, model, {"trained": True})
    gated_ckpt = tmp_path / "gated.pth"
    save_gate(old, _gate(ACCEPT_NONE).to_dict(), out=gated_ckpt)
    assert load_refiner_and_gate(old)[2] is None
    assert load_refiner_and_gate(gated_ckpt)[2]["threshold"] == ACCEPT_NONE
    legacy = RefinePostProcessor(old)
    assert legacy.gate is None and len(legacy.notices) == 1 and "no calibrated gate" in legacy.notices[0]
    assert RefinePostProcessor(gated_ckpt).gate is not None and RefinePostProcessor(gated_ckpt, gate=False).gate is None

    res = tmp_path / "res.json"
    res.write_text(json.dumps(records))
    images = val_gt.image_dir

    def refine(ckpt, *extra):
        out = tmp_path / f"out_{ckpt.stem}_{len(extra)}.json"
        code = cli.main(["refine", "--checkpoint", str(ckpt), "--images", str(images), "--gt", str(val_gt_path),
                         "--results", str(res), "--out", str(out), *extra])
        return code, json.loads(out.read_text()), capsys.readouterr()

    code, legacy_out, cap = refine(old)
    assert code == 0 and cap.err.count("no calibrated gate") == 1
    code, no_gate, cap = refine(gated_ckpt, "--no-gate")
    assert code == 0 and "accepted share" not in cap.out
    assert [r["keypoints"] for r in no_gate] == [r["keypoints"] for r in legacy_out]  # --no-gate: as before
    assert all("refine_accepted" not in r for r in no_gate)
    code, with_gate, cap = refine(gated_ckpt)
    assert code == 0 and "accepted share 0.0%" in cap.out
    assert [r["keypoints"] for r in with_gate] == [r["keypoints"] for r in records]
    assert all(sum(r["refine_accepted"]) == 0 for r in with_gate)

    broken = tmp_path / "broken_gate.pth"
    save_gate(old, {"format": "posefix-bench/gate/v0"}, out=broken)
    with pytest.raises(PosefixError, match="unsupported gate format"):
        RefinePostProcessor(broken)
    assert RefinePostProcessor(broken, gate=False).gate is None  # --no-gate still refines with it


# -- hold-out and calibration --------------------------------------------------------------------------------------
def test_holdout_is_seeded_and_left_out_of_training(train_gt):
    ids = train_gt.image_ids
    a = holdout_image_ids(ids, 0.2, seed=0)
    assert a == holdout_image_ids(ids, 0.2, seed=0) and len(a) == round(0.2 * len(ids))
    assert a != holdout_image_ids(ids, 0.2, seed=1) and holdout_image_ids(ids, 5, 0) != []
    assert holdout_image_ids(ids, 0, 0) == []
    with pytest.raises(PosefixError, match="leaves none"):
        holdout_image_ids(ids, len(ids), 0)
    from posefix_bench.engine.train import load_config, parse_config

    repo = Path(__file__).resolve().parents[2]
    _, data, _ = parse_config(load_config(repo / "ablations" / "quick" / "r18_64x48_paper_lb-off_skip.py"))
    assert (data.holdout, data.holdout_seed) == (200, 0)  # the quick default keeps 200 images for its gate
    with pytest.raises(PosefixError, match="data.holdout must be >= 0"):
        parse_config(load_config(repo / "ablations" / "quick" / "r18_64x48_paper_lb-off_skip.py",
                                 {"data.holdout": -1}))
    full = RefinerTrainSet(train_gt, SIZE, get_mix("paper", train_gt.schema))
    part = RefinerTrainSet(train_gt, SIZE, get_mix("paper", train_gt.schema), exclude_images=frozenset(a))
    assert {p[0] for p in part.persons} == {p[0] for p in full.persons} - set(a)
    assert len(part) < len(full)


def _meta(coco_mini_root, holdout):
    data = dict(root=str(coco_mini_root), train_split="train2017", val_split="val2017", holdout=holdout)
    return {"trained": True, "train_config": {"model": {}, "data": data, "train": {}}}


def test_calibration_data_is_the_holdout_or_unseen_training_images(coco_mini_root, train_gt):
    data = calibration_data(_meta(coco_mini_root, 0.25), None, None)
    assert data.image_ids == holdout_image_ids(train_gt.image_ids, 0.25, 0)
    assert data.record["persons"] > 0 and "hold-out" in data.record["selection"]
    with pytest.raises(PosefixError, match="trained on every image"):
        calibration_data(_meta(coco_mini_root, 0), None, None)
    with pytest.raises(PosefixError, match="validation"):
        calibration_data(_meta(coco_mini_root, 0), coco_mini_root, "val2017")
    # the same split given explicitly: only the images it did not train on (the hold-out)
    again = calibration_data(_meta(coco_mini_root, 0.25), coco_mini_root, "train2017")
    assert again.image_ids == data.image_ids


def _group(name, feats, ks_in, ks_ref, per_person=10):
    m = len(ks_in)
    n = m // per_person
    return {"name": name, "features": feats, "ks_in": ks_in, "ks_ref": ks_ref, "det": np.arange(m) // per_person,
            "joint": np.arange(m) % per_person, "refinable": np.ones(m, bool),
            "scores": np.linspace(1.0, 0.5, n), "status": np.ones(n, int)}


def test_ap_proxy_is_coco_ap_of_one_pose_per_person():
    # 4 persons, scores descending; OKS 0.97, 0.72, 0.4, matched; at OKS threshold t the true positives are the
    # persons at or above t: AP = mean over t of COCO's 101-point interpolated precision
    ks = np.repeat([0.97, 0.72, 0.4, 0.9], 2)
    rows = {"det": np.repeat(np.arange(4), 2), "scores": np.array([0.9, 0.8, 0.7, 0.1]), "status": np.ones(4, int)}
    expect = []
    for t in np.round(np.arange(0.5, 0.951, 0.05), 2):
        tp = np.array([0.97, 0.72, 0.4, 0.9]) >= t
        prec = np.cumsum(tp) / np.arange(1, 5)
        rec = np.cumsum(tp) / 4
        prec = np.maximum.accumulate(prec[::-1])[::-1]
        expect.append(np.mean([prec[np.searchsorted(rec, r)] if np.searchsorted(rec, r) < 4 else 0.0
                               for r in np.linspace(0, 1, 101)]))
    assert ap_proxy(ks, rows, 4) == pytest.approx(np.mean(expect))
    # an unmatched pose ranked first is a false positive at every threshold: AP falls
    rows_fp = dict(rows, det=rows["det"], scores=np.array([0.9, 0.8, 0.7, 0.1, 0.95]), status=np.array([1, 1, 1, 1, 0]))
    assert ap_proxy(ks, rows_fp, 4) < ap_proxy(ks, rows, 4)


def test_fit_gate_keeps_gain_and_accepts_nothing_when_nothing_gains():
    rng = np.random.default_rng(1)
    m, f = 3000, len(FEATURES)
    feats = rng.standard_normal((m, f))
    good = feats[:, 0] > 0.3  # the refiner is right where its confidence feature is high
    ks_in = rng.uniform(0.3, 0.9, m)
    ks_ref = np.where(good, np.minimum(ks_in + 0.3, 1.0), ks_in - 0.3).clip(0, 1)
    gate, rec = fit_gate([_group("g", feats, ks_in, ks_ref)], n_persons=300)
    g = rec["per_input_set"]["g"]
    assert g["delta_ap_gated"] >= 0.95 * rec["best_gain"] - 1e-12 > 0
    assert g["delta_ap_gated"] > g["delta_ap_ungated"]
    assert 0.2 < g["accepted_share"] < 0.6  # about the 38% that gain
    gate2, rec2 = fit_gate([_group("g", feats, ks_in, ks_in - 0.2)], n_persons=300)
    assert gate2.threshold == ACCEPT_NONE and rec2["per_input_set"]["g"]["accepted_share"] == 0.0
    # do no harm: a second input set on which every refinement loses forbids any threshold that accepts its rows
    harm = _group("strong", feats, np.full(m, 0.97), np.full(m, 0.9))  # a mild loss
    gate3, rec3 = fit_gate([_group("g", feats, ks_in, ks_ref), harm], n_persons=300, tolerance=0.0)
    assert rec3["per_input_set"]["strong"]["delta_ap_gated"] >= 0 > rec3["per_input_set"]["strong"]["delta_ap_ungated"]
    gate4, rec4 = fit_gate([_group("g", feats, ks_in, ks_ref), harm], n_persons=300, tolerance=1.0)
    assert rec4["per_input_set"]["strong"]["delta_ap_gated"] < 0  # relaxed: the harm is taken for more gain
    assert rec4["per_input_set"]["g"]["delta_ap_gated"] > rec3["per_input_set"]["g"]["delta_ap_gated"]
    assert gate4.threshold < gate3.threshold



def test_fit_gate_tolerates_a_loss_within_the_no_harm_bound():
    # the default "no harm" bound is DEFAULT_TOLERANCE AP per input set, not 0: an error-free input set where
    # refinement breaks a few persons (under 0.002 AP if every one of their keypoints is taken) must not push the
    # threshold up to where the gate gives away the gain of the sets with errors
    assert DEFAULT_TOLERANCE == 0.002
    rng = np.random.default_rng(2)
    m, f = 3000, len(FEATURES)
    feats = rng.standard_normal((m, f))
    good = feats[:, 0] > 0.3
    ks_in = rng.uniform(0.3, 0.9, m)
    ks_ref = np.where(good, np.minimum(ks_in + 0.3, 1.0), ks_in - 0.3).clip(0, 1)
    clean_ref = np.full(m, 0.97)
    clean_ref[-50:] = 0.9  # the last 5 of 300 persons (lowest scores) fall below OKS 0.95 where taken
    groups = [_group("g", feats, ks_in, ks_ref), _group("none", feats, np.full(m, 0.97), clean_ref)]
    strict, rec_strict = fit_gate([dict(g) for g in groups], n_persons=300, tolerance=0.0)
    gate, rec = fit_gate([dict(g) for g in groups], n_persons=300)
    assert rec["tolerance"] == DEFAULT_TOLERANCE
    assert rec_strict["per_input_set"]["none"]["delta_ap_gated"] >= 0
    assert -DEFAULT_TOLERANCE <= rec["per_input_set"]["none"]["delta_ap_gated"] < 0  # the loss taken, within bound
    assert gate.threshold < strict.threshold
    assert rec["per_input_set"]["g"]["delta_ap_gated"] > rec_strict["per_input_set"]["g"]["delta_ap_gated"]
    assert rec["chosen_gain"] >= DEFAULT_KEEP * rec["best_gain"] - 1e-12
    # a loss beyond the bound stays forbidden: every clean person broken is about 0.03 AP
    broken = [groups[0], _group("none", feats, np.full(m, 0.97), np.full(m, 0.9))]
    gate2, rec2 = fit_gate(broken, n_persons=300)
    assert rec2["per_input_set"]["none"]["delta_ap_gated"] >= -DEFAULT_TOLERANCE

def test_gate_rows_measure_the_refined_keypoint_against_the_inputs_person(val_gt, records, model):
    post = RefinePostProcessor(model, meta={"trained": True}, gate=False)
    out = post.refine_detailed(val_gt, records)
    rows = gate_rows(val_gt, records, records, out.evidence, "absent")  # "refined" = input: no change
    assert np.allclose(rows["ks_in"], rows["ks_ref"]) and len(rows["ks_in"]) > 0
    rows = gate_rows(val_gt, records, out.ungated, out.evidence, "absent")
    assert rows["features"].shape == (len(rows["ks_in"]), len(FEATURES))
    assert not np.allclose(rows["ks_in"], rows["ks_ref"])


@pytest.mark.slow
def test_calibrate_command_writes_a_gate_that_refine_applies(tmp_path, coco_mini_root, train_gt, model, capsys):
    ckpt = tmp_path / "final.pth"
    save_refiner(ckpt, model, _meta(coco_mini_root, 0.2))
    out = tmp_path / "gated.pth"
    # an estimator's results on the training split (here synthesised with another mix) join as an input set,
    # restricted to the calibration (held-out) images
    est = tmp_path / "estimator_train.json"
    est.write_text(json.dumps(synthesize_results(train_gt, get_mix("jitter-only", train_gt.schema), seed=9)))
    code = cli.main(["calibrate", "--checkpoint", str(ckpt), "--out", str(out), "--mixes", "paper,none",
                     "--draws", "1", "--tolerance", "0.001", "--results", f"estimator={est}"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "hold-out of the training split" in cap.out and "accepted share" in cap.out
    _, meta, gate = load_refiner_and_gate(out)
    assert load_refiner_and_gate(ckpt)[2] is None  # --out: the original is left as it was
    cal = gate["calibration"]
    assert cal["data"]["images"] == len(holdout_image_ids(train_gt.image_ids, 0.2, 0))
    assert [s.get("mix") for s in cal["inputs"]] == ["paper", "none", None]
    held = set(holdout_image_ids(train_gt.image_ids, 0.2, 0))
    on_held = [r for r in json.loads(est.read_text()) if r["image_id"] in held]
    assert cal["inputs"][2] == {"name": "estimator", "kind": "results", "poses": len(on_held)} and 0 < len(on_held)
    summary = gate_summary(gate)
    assert summary["gate"] == "calibrated" and summary["threshold"] == gate["threshold"]
    assert summary["inputs"] == ["paper#0", "none#0", "estimator"] and summary["data"]["persons"] > 0
    assert gate_summary(None) == {"gate": "off"}
    assert set(cal["coco_ap"]) == {s["name"] for s in cal["inputs"]}
    assert cal["fit"]["chosen_gain"] >= cal["fit"]["keep"] * cal["fit"]["best_gain"] - 1e-12
    assert cal["fit"]["tolerance"] == 0.001
    post = RefinePostProcessor(out)
    assert post.gate is not None and post.gate.threshold == gate["threshold"] and not post.notices
    bad = cli.main(["calibrate", "--checkpoint", str(ckpt), "--data-root", str(coco_mini_root), "--split",
                    "val2017"])
    cap = capsys.readouterr()
    assert bad == 2 and "validation split" in cap.err and "Traceback" not in cap.err
    for flag, value in (("--tolerance", "-0.1"), ("--keep", "0")):
        bad = cli.main(["calibrate", "--checkpoint", str(ckpt), flag, value])
        err = capsys.readouterr().err
        assert bad == 2 and f"{flag} must be in" in err and "Traceback" not in err
