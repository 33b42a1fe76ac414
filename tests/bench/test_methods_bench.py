"""Refinement methods in the bench: a tiny profile gains a ``command`` method and a ``python`` method (from a module
under tmp_path, no package file edited) beside identity and the default posefix refiner; the bench runs each on
every source through the same analysis as the ablations and writes ``methods/<method>/metrics.json`` and the index's
"Refinement methods" table."""

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from posefix_bench.bench.profile import load_profile
from posefix_bench.cli import main
from posefix_bench.errors import PosefixError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = "r18_64x48_paper_lb-off_prior+skip"

SHIFT = """
import json, sys
records = json.load(open(sys.argv[1]))
for r in records:
    r["keypoints"] = [v + 1.5 if i % 3 == 0 else v for i, v in enumerate(r["keypoints"])]
json.dump(records, open(sys.argv[2], "w"))
"""
SNAP = """
def snap(results, images, gt):
    assert images.is_dir() and gt.is_file()
    return [dict(r, keypoints=[round(v) if i % 3 != 2 else v for i, v in enumerate(r["keypoints"])])
            for r in results]
"""


def _profile(folder: Path, methods: str) -> Path:
    folder.mkdir()
    base = REPO / "ablations" / "_base_" / "quick.py"
    (folder / "_profile_.py").write_text(
        "profile = dict(name='tiny', description='test', data=dict(kind='sandbox', params=dict(seed=3, train=10, "
        "val=6)),\n"
        "    sources=[dict(name='synthetic-paper', type='synthetic', mix='paper', seed=5),\n"
        "             dict(name='sb-untrained', type='mmpose', card='sandbox-simplebaseline-r18-64x48',\n"
        "                  untrained=True)],\n"
        "    free_baselines=dict(methods=[]),\n"
        "    seeds=[0], refine=dict(batch_size=16), fps=dict(batches=[2], precisions=['fp32'], threads=1),\n"
        f"    default_ablation='{DEFAULT}',\n"
        f"    methods={methods})\n")
    (folder / f"{DEFAULT}.py").write_text(
        f"_base_ = ['{base}']\nmodel = dict(head='prior+skip')\n"
        "data = dict(sandbox=dict(seed=3, train=10, val=6), holdout=2)\n"
        "train = dict(max_iters=4, batch_size=8, checkpoint_interval=2, log_interval=2)\n")
    return folder


@pytest.fixture
def external(tmp_path, monkeypatch):
    """A refiner script and a refiner module, both outside the package (the module importable from tmp_path)."""
    (tmp_path / "shift.py").write_text(textwrap.dedent(SHIFT))
    (tmp_path / "my_snap.py").write_text(textwrap.dedent(SNAP))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.slow
def test_bench_runs_command_and_python_methods_beside_identity_and_posefix(tmp_path, external, capsys):
    methods = ("[dict(name='posefix', type='posefix'), dict(name='identity', type='identity'), "
               "dict(name='re-estimate', type='re-estimate', estimator='sb-untrained'), "
               "dict(name='pose-prior', type='pose-prior'), "
               f"dict(name='shift', type='command', command='{sys.executable} {external / 'shift.py'} "
               "{input} {output}'), dict(name='snap', type='python', callable='my_snap:snap')]")
    profile = _profile(tmp_path / "tiny", methods)
    out, cache = tmp_path / "reports", tmp_path / "cache"
    assert main(["bench", "--profile", str(profile), "--out", str(out), "--cache", str(cache), "--jobs", "1"]) == 0
    bench = json.loads((out / "tiny" / "bench.json").read_text())
    names = ["posefix", "identity", "re-estimate", "pose-prior", "shift", "snap"]
    assert [m["name"] for m in bench["methods"]] == names
    records = {m: json.loads((out / "tiny" / "methods" / m / "metrics.json").read_text()) for m in names}
    for name, rec in records.items():
        assert rec["method"] == name and set(rec["sources"]) == {"synthetic-paper", "sb-untrained"}
        for src in rec["sources"].values():
            assert 0.0 <= src["ap_before"] <= 1.0
            assert src["delta"]["mean"] == pytest.approx(src["ap_after"]["mean"] - src["ap_before"])
            assert src["samples_per_s"] > 0 and src["persons"] > 0
            assert set(src["fixed"]) and src["per_keypoint"]["after"]
    for src in records["identity"]["sources"].values():
        assert src["delta"]["mean"] == 0.0  # exactly
        assert src["ci95"] == [0.0, 0.0]  # the same keypoints on every draw
    # every method against every other on the same bootstrap draws (issue 27): identity minus itself is 0
    paired = records["posefix"]["paired"]
    assert set(paired) == set(names) - {"posefix"}
    for name in names:
        for src, rec in records[name]["sources"].items():
            assert rec["ci95"][0] <= rec["delta"]["mean"] <= rec["ci95"][1], (name, src)
    for src, rec in paired["identity"]["sources"].items():
        posefix = records["posefix"]["sources"][src]
        assert rec["delta"] == pytest.approx(posefix["ap_after"]["mean"] - posefix["ap_before"])
        assert rec["ci95"] == pytest.approx(posefix["ci95"])  # against identity: the delta's own interval
    assert records["shift"]["sources"]["synthetic-paper"]["delta"]["mean"] != 0.0  # the program's keypoints count
    assert records["re-estimate"]["untrained"] is True  # random weights: marked
    # the pose prior trained on the default ablation's samples for its budget (4 iterations of 8), moved keypoints
    (prior,) = cache.glob("pose-prior/*/DONE")
    assert json.loads(prior.read_text())["iterations"] == 4 and json.loads(prior.read_text())["batch_size"] == 8
    assert records["pose-prior"]["sources"]["synthetic-paper"]["ap_after"]["mean"] != \
        records["pose-prior"]["sources"]["synthetic-paper"]["ap_before"]
    # the posefix method ran the default ablation's calibrated refiner, with its gate as today
    assert records["posefix"]["options"]["checkpoint"].endswith(".pth")
    run = next(r for r in bench["ablations"][0]["runs"] if r["source"] == "synthetic-paper")
    ablation_ap = run["gate"]["ap_after"]["AP"]
    assert records["posefix"]["sources"]["synthetic-paper"]["ap_after"]["mean"] == pytest.approx(ablation_ap)
    index = (out / "tiny" / "index.md").read_text()
    assert "## Refinement methods" in index and "](methods/shift/metrics.json)" in index
    assert "On synthetic-paper, the best method is" in index
    assert re.search(r"posefix (beats|is tied with|is behind) pose-prior \(.*; 95% interval", index)
    assert "| 95% interval |" in index
    # --render-only: the same index from bench.json (the methods read back from the record)
    (out / "tiny" / "index.md").unlink()
    assert main(["bench", "--profile", str(profile), "--out", str(out), "--cache", str(cache), "--jobs", "1",
                 "--render-only"]) == 0
    assert (out / "tiny" / "index.md").read_text() == index
    # the bench again: every method step from the cache; an edited external refiner reruns its own step only
    done = {p: p.stat().st_mtime_ns for p in cache.glob("method/*/DONE")}
    assert len(done) == 12
    (external / "shift.py").write_text(textwrap.dedent(SHIFT).replace("1.5", "2.5"))
    assert main(["bench", "--profile", str(profile), "--out", str(out), "--cache", str(cache), "--jobs", "1"]) == 0
    again = {p: p.stat().st_mtime_ns for p in cache.glob("method/*/DONE")}
    assert len(again) == 14 and sum(again.get(p) == t for p, t in done.items()) == 12


@pytest.mark.parametrize("methods, words", [
    ("[dict(name='a', type='identity'), dict(name='a', type='identity')]", "two methods are named 'a'"),
    ("[dict(name='a', type='nope')]", "unknown refinement method 'nope'"),
    ("[dict(name='a', type='identity', colour=1)]", "unknown option 'colour'"),
    ("[dict(name='a', type='command', command='no-such-program-xyz {input} {output}')]", "not found"),
    ("[dict(name='a', type='python', callable='no_such_module_xyz:f')]", "cannot be imported"),
    ("[dict(name='a', type='posefix', ablation='nope')]", "ablation 'nope' is not an ablation"),
    ("[dict(name='a', type='posefix', checkpoint='x.pth')]", "'checkpoint' is set by the bench"),
    ("[dict(name='a', type='pose-prior', ablation='nope')]", "ablation 'nope' is not an ablation"),
    ("[dict(type='identity')]", "profile.methods[0] lacks 'name'"),  # the profile schema's check
    ("[dict(name='a', type='re-estimate', estimator='synthetic-paper')]", "a synthetic source, not an mmpose"),
    ("[dict(name='a', type='re-estimate', estimator='nope')]", "'nope' is not an mmpose estimator card"),
])
def test_methods_are_checked_when_the_profile_loads(tmp_path, methods, words):
    profile = _profile(tmp_path / "tiny", methods)
    with pytest.raises(PosefixError, match="_profile_.py: ") as e:
        load_profile(str(profile))
    assert words in str(e.value) and "\n" not in str(e.value)
