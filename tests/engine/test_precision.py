"""Precision by measurement (issue 21): the decision with injected timings and flags, the probe's time budget with an
injected clock, the hardware evidence, a real probe's record and its caches, explicit precisions winning, and the
plan of what a throughput table times and what it lists as emulated.

No timing assertions: the tests check decisions and records, never how fast anything ran.
"""

from __future__ import annotations

import json

import pytest

from posefix_bench.engine import precision as P
from posefix_bench.engine.fps import plan_precisions
from posefix_bench.errors import PosefixError

TINY = dict(backbone="resnet18", head="skip", input_size=(48, 64), deconv_channels=32)
AVX2 = {"machine": "x86_64", "cpu_capability": "AVX2"}


# -- the decision (pure) ------------------------------------------------------------------------------------------
def test_emulated_bf16_is_never_chosen_and_the_sentence_says_why():
    """The AVX2 machine of issue 21: a batch-32 step 1.0 s in fp32, 33.1 s in bf16, no bf16 flag."""
    d = P.decide({"fp32": 1000.0, "bf16": 33100.0}, {"fp32": True, "bf16": False, "fp16": False}, "cpu", AVX2)
    assert d["precision"] == "fp32" and d["status"] == {"fp32": "reference", "bf16": "emulated", "fp16": "unsupported"}
    assert d["ratio"]["bf16"] == pytest.approx(33.1) and d["notes"] == {"bf16": d["sentence"][len("precision: fp32 ("):-1]}
    assert d["sentence"] == "precision: fp32 (bf16 measured 33x slower on this CPU: emulated, no avx512_bf16/amx_bf16)"
    # emulated stays unchosen even when it happens to time faster (the rule is native *and* fast)
    assert P.decide({"fp32": 10.0, "bf16": 5.0}, {"bf16": False}, "cpu", AVX2)["precision"] == "fp32"


@pytest.mark.parametrize("bf16_ms,flag,expected,status,phrase", [
    (10 / 1.5, True, "bf16", "native", "bf16 measured 1.5x faster than fp32 on this CPU, native"),
    (10 / 1.05, True, "fp32", "native", "bf16 native but measured only 1.05x faster, 1.1x needed"),
    (12.0, True, "fp32", "native", "bf16 measured 1.2x slower"),
    (10 / 1.3, None, "bf16", "native", "1.3x faster"),  # no flag either way: the measurement decides
    (30.0, None, "fp32", "emulated", "emulated, no native-support evidence"),
])  # fmt: skip
def test_native_bf16_must_be_measured_faster_by_the_margin(bf16_ms, flag, expected, status, phrase):
    d = P.decide({"fp32": 10.0, "bf16": bf16_ms}, {"fp32": True, "bf16": flag}, "cpu", AVX2)
    assert (d["precision"], d["status"]["bf16"]) == (expected, status) and phrase in d["sentence"], d["sentence"]
    assert d["sentence"].startswith(f"precision: {expected} (")


def test_cuda_picks_the_fastest_native_reduced_precision():
    native = {"fp32": True, "bf16": True, "fp16": True}
    assert P.decide({"fp32": 10.0, "bf16": 4.0, "fp16": 3.8}, native, "cuda")["precision"] == "fp16"
    d = P.decide({"fp32": 10.0, "bf16": 4.0, "fp16": 5.0}, native, "cuda")
    assert d["precision"] == "bf16" and "on this GPU" in d["sentence"] and "fp16 measured 2x faster" in d["sentence"]
    old_gpu = P.decide({"fp32": 10.0, "bf16": 40.0, "fp16": 6.0}, {"fp32": True, "bf16": False, "fp16": True},
                       "cuda", {"compute_capability": "7.0"})
    assert old_gpu["precision"] == "fp16" and "emulated, compute capability 7.0" in old_gpu["sentence"]


def test_decision_needs_the_fp32_reference():
    with pytest.raises(PosefixError, match="fp32 reference time is missing"):
        P.decide({"bf16": 3.0}, {}, "cpu")


# -- the measurement protocol (injected clock) --------------------------------------------------------------------
class _FakeClock:
    def __init__(self, cost: dict):
        self.t, self.cost, self.calls = 0.0, cost, []

    def __call__(self) -> float:
        return self.t

    def step(self, precision: str) -> None:
        self.calls.append(precision)
        self.t += self.cost[precision]


def test_measure_excludes_the_warm_up_and_stops_at_the_budget():
    clock = _FakeClock({"fp32": 0.1, "bf16": 33.0, "fp16": 0.8})
    out = P.measure(clock.step, ("fp32", "bf16", "fp16"), "cpu", repeats=3, budget_s=2.0, clock=clock)
    assert clock.calls == ["fp32"] * 4 + ["bf16"] + ["fp16"] * 3  # warm-up + 3; warm-up only; warm-up + 2 (budget)
    assert out["fp32"] == {"ms": pytest.approx(100.0), "first_ms": pytest.approx(100.0), "repeats": 3,
                           "warmup_only": False}
    assert out["bf16"]["warmup_only"] and out["bf16"]["repeats"] == 0 and out["bf16"]["ms"] == pytest.approx(33000)
    assert out["fp16"]["repeats"] == 2 and not out["fp16"]["warmup_only"]


# -- evidence -----------------------------------------------------------------------------------------------------
def test_native_support_follows_the_cpu_flags():
    import platform

    sup = P.native_support("cpu")
    assert sup["native"]["fp32"] is True and sup["native"]["fp16"] is False
    assert set(sup["evidence"]) >= {"cpu_capability", "cpuinfo_flags", "torch_cpu_caps"}
    flags, caps = P._cpuinfo_flags(), P._torch_cpu_caps() or {}
    if flags is not None and platform.machine().lower() in ("x86_64", "amd64"):
        has = bool(flags & {"avx512_bf16", "amx_bf16"}) or bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
        assert sup["native"]["bf16"] is has
    assert P.candidates("cpu") == ("fp32", "bf16")


def test_explicit_names_win_and_bad_names_are_one_line_errors(monkeypatch):
    monkeypatch.delenv(P.PRECISION_ENV, raising=False)
    monkeypatch.setattr(P, "measure", lambda *a, **k: pytest.fail("an explicit precision must not probe"))
    rec = P.resolve_precision("bf16", "cpu", "train", TINY)
    assert (rec["precision"], rec["decided_by"], rec["probe"]) == ("bf16", "explicit", None)
    native = P.native_support("cpu")["native"]["bf16"]
    assert ("emulated on this CPU" in rec["sentence"]) is (native is False)
    assert P.resolve_precision("fp32", "cpu")["sentence"] == "precision: fp32 (set explicitly)"
    with pytest.raises(PosefixError, match=r"^refine: precision='fp16' needs CUDA"):
        P.resolve_precision("fp16", "cpu", what="refine: precision")
    with pytest.raises(PosefixError, match="must be one of auto, fp32, bf16, fp16, got 'half'"):
        P.check_precision("half")
    with pytest.raises(PosefixError, match="needs the network"):
        P.resolve_precision("auto", "cpu")
    assert [P.amp_to_precision(a) for a in (True, False, None, "auto", "bf16")] == ["auto", "fp32", "fp32", "auto",
                                                                                      "bf16"]
    with pytest.raises(PosefixError, match="config: train.amp must be"):
        P.amp_to_precision(1.5)


# -- the probe ----------------------------------------------------------------------------------------------------
def _valid_record(rec: dict, kind: str) -> None:
    assert rec["kind"] == kind and rec["requested"] == "auto" and rec["decided_by"] == "probe"
    flagged = rec["native"]["bf16"] is False  # flagged emulated: one forward at batch 1 only, against fp32
    check = rec["probe"]["emulation_check"]
    timings = check["ms_per_step"] if flagged else rec["ms_per_step"]
    assert set(rec["ms_per_step"]) == ({"fp32"} if flagged else {"fp32", "bf16"}) and (check is not None) is flagged
    assert set(timings) == {"fp32", "bf16"} and min(timings.values()) > 0
    assert rec["ratio"]["bf16"] == pytest.approx(timings["bf16"] / timings["fp32"])
    assert rec["precision"] in ("fp32", "bf16") and rec["status"][rec["precision"]] in ("reference", "native")
    assert rec["sentence"].startswith(f"precision: {rec['precision']} (")
    assert rec["probe"]["batch"] == 2 and rec["probe"]["threads"] >= 1 and rec["probe"]["seconds"] > 0
    assert rec["probe"]["network"]["backbone"] == "resnet18" and rec["native"] == P.native_support("cpu")["native"]
    # the decision is the pure function of the record's own timings and flags
    again = P.decide({"fp32": 1.0, "bf16": rec["ratio"]["bf16"]}, rec["native"], "cpu", rec["evidence"])
    assert (again["precision"], again["sentence"]) == (rec["precision"], rec["sentence"])
    json.dumps(rec)


def test_probe_records_are_valid_and_cached_per_process_and_on_disk(tmp_path, monkeypatch):
    P.clear_probe_cache()
    rec = P.probe("train", TINY, "cpu", batch=2, threads=1, budget_s=0.5)
    _valid_record(rec, "train")
    assert rec["probe"]["bn_folded"] is False
    inf = P.probe("infer", TINY, "cpu", batch=2, threads=1, budget_s=0.5, cache_dir=tmp_path)
    _valid_record(inf, "infer")
    assert inf["probe"]["bn_folded"] is True and len(list(tmp_path.glob("infer-*.json"))) == 1

    monkeypatch.setattr(P, "measure", lambda *a, **k: pytest.fail("a cached probe must not measure again"))
    assert P.probe("train", TINY, "cpu", batch=2, threads=1, budget_s=0.5) == rec
    P.clear_probe_cache()  # a new process: the disk record, same choice
    reused = P.probe("infer", TINY, "cpu", batch=2, threads=1, budget_s=0.5, cache_dir=tmp_path)
    assert reused["reused_from"].startswith(str(tmp_path)) and reused["precision"] == inf["precision"]
    P.clear_probe_cache()


# -- what a throughput table times ----------------------------------------------------------------------------------
def _record(status: str, ratio: float) -> dict:
    return {"status": {"fp32": "reference", "bf16": status}, "ratio": {"bf16": ratio}, "kind": "train",
            "notes": {"bf16": f"bf16 measured {P.speed_text(ratio)} on this CPU: {status}"},
            "probe": {"batch": 8, "network": {"backbone": "resnet18", "input_size": [48, 64]}, "emulation_check": {
                "step": "forward", "batch": 1, "ms_per_step": {"fp32": 10.0, "bf16": 10.0 * ratio}}}}


def test_plan_times_native_precisions_and_lists_emulated_ones():
    timed, emulated = plan_precisions("auto", "cpu", _record("emulated", 33.0))
    assert timed == ["fp32"] and [e["precision"] for e in emulated] == ["bf16"]
    assert emulated[0]["ratio_vs_fp32"] == 33.0 and emulated[0]["note"] == (
        "bf16 not timed: bf16 measured 33x slower on this CPU: emulated (precision probe: resnet18 64x48 forward, "
        "batch 1)")
    assert plan_precisions(["auto"], "cpu", _record("native", 0.6)) == (["fp32", "bf16"], [])
    assert plan_precisions(["bf16", "fp32"], "cpu") == (["fp32", "bf16"], [])  # explicit: timed as asked
    assert plan_precisions(["auto", "bf16"], "cpu", _record("emulated", 33.0)) == (["fp32", "bf16"], [])
    with pytest.raises(PosefixError, match="needs the precision probe"):
        plan_precisions("auto", "cpu")
