"""Executors: the local process pool, submitit's Slurm path driven through submitit's own LocalExecutor (real job
processes), the dry-run job scripts, the resources from a profile and the command line."""

import argparse
import operator
import os
import shlex
import sys
from pathlib import Path

import pytest

from posefix_bench.bench.executors import (
    TORCHRUN_ENV, DryRunStop, Job, LocalExecutor, SlurmExecutor, add_executor_arguments, build_executor,
    probe_job, slurm_resources, torchrun_command,
)
from posefix_bench.errors import PosefixError

TESTS = Path(__file__).resolve().parents[1]
PROFILE = dict(partition="gpu", setup=["echo setting up"],
               train=dict(gpus=8, cpus_per_task=64, mem_gb=480, timeout_min=4320),
               predict=dict(gpus=1, cpus_per_task=8, mem_gb=64, timeout_min=240),
               evaluate=dict(cpus_per_task=4, mem_gb=32, timeout_min=120))


class Spec:  # what build_executor reads of a RunSpec
    def __init__(self, tmp_path: Path, jobs=2, threads=1):
        self.jobs, self.threads = jobs, threads
        self.cache_root, self.out_dir = str(tmp_path / "cache"), str(tmp_path / "out")


def test_job_needs_a_module_level_function_and_a_known_kind():
    with pytest.raises(PosefixError, match="module level"):
        Job(lambda: 1)
    with pytest.raises(PosefixError, match="kind 'fit'"):
        Job(operator.add, (1, 2), kind="fit")
    assert Job(operator.add, (1, 2)).name == "add"


def test_local_pool_runs_jobs_in_spawned_workers_in_order_and_stops_on_a_failure():
    ex = LocalExecutor(jobs=2, threads=1)
    jobs = [Job(pow, (2, k), name=f"pow {k}") for k in range(5)] + [Job(probe_job, ("a",)), Job(probe_job, ("b",))]
    out = ex.run(jobs, "test")
    assert out[:5] == [1, 2, 4, 8, 16]
    probes = out[5:]
    assert [p["tag"] for p in probes] == ["a", "b"]
    assert all(p["threads"] == 1 and p["pid"] != os.getpid() for p in probes)
    with pytest.raises(ValueError):
        ex.run([Job(pow, (2, 3)), Job(int, ("not a number",))], "fail")


def test_local_single_job_runs_in_this_process():
    assert LocalExecutor(jobs=1, threads=1).run([Job(probe_job, ("x",))], "one")[0]["pid"] == os.getpid()
    with pytest.raises(ValueError):
        LocalExecutor(jobs=1, threads=1).run([Job(int, ("not a number",))], "fail")


def test_cached_jobs_are_answered_in_the_calling_process(tmp_path):
    ex = SlurmExecutor(tmp_path / "submitit", PROFILE, dry_run=True, dry_run_dir=tmp_path / "dry")
    out = ex.run([Job(probe_job, ("cached",), kind="train", cached=True)], "resume")  # nothing left to submit
    assert out[0]["pid"] == os.getpid()
    assert not (tmp_path / "dry").exists()


def test_resources_from_profile_then_command_line():
    r = slurm_resources(PROFILE, "train", ["mem_gb=500", "train.gpus=4", "predict.gpus=2"])
    assert (r.partition, r.gpus, r.cpus_per_task, r.mem_gb, r.timeout_min) == ("gpu", 4, 64, 500.0, 4320)
    assert r.torchrun_nproc == 4
    p = slurm_resources(PROFILE, "predict", ["partition=dev", "train.gpus=4"])
    assert (p.partition, p.gpus, p.mem_gb, p.torchrun_nproc) == ("dev", 1, 64.0, None)
    e = slurm_resources({}, "evaluate")
    assert (e.gpus, e.cpus_per_task, e.timeout_min, e.partition) == (0, 1, 60, None)
    for bad, match in [("gpus=two", "not a int"), ("gpu=1", "unknown Slurm resource"), ("fit.gpus=1", "job kind"),
                       ("gpus", "KEY=VALUE"), ("mem_gb=-1", ">= 0")]:
        with pytest.raises(PosefixError, match=match):
            slurm_resources(PROFILE, "train", [bad])
    with pytest.raises(PosefixError, match="slurm.train"):
        slurm_resources({"train": 8}, "train")


def test_dry_run_writes_sbatch_scripts_with_resources_and_the_torchrun_launch(tmp_path):
    ex = SlurmExecutor(tmp_path / "submitit", PROFILE, ["train.timeout_min=600"], dry_run=True,
                       dry_run_dir=tmp_path / "dry")
    jobs = [Job(probe_job, ("t",), kind="train", name="train r50 seed 0"),
            Job(probe_job, ("p",), kind="predict", name="predict hrnet")]
    with pytest.raises(DryRunStop) as stop:
        ex.run(jobs, "training")
    scripts = stop.value.scripts
    assert [p.name for p in scripts] == ["001-posefix-train-train-r50-seed-0.sbatch",
                                         "002-posefix-predict-predict-hrnet.sbatch"]
    train, predict = (p.read_text() for p in scripts)
    for line in ["#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=64",
                 "#SBATCH --mem=480GB", "#SBATCH --time=600", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --job-name=posefix-train-train-r50-seed-0", "echo setting up",
                 "export OMP_NUM_THREADS=8"]:  # 64 CPUs shared by 8 ranks
        assert line in train, line
    launch = [ln for ln in train.splitlines() if ln.startswith(f"export {TORCHRUN_ENV}=")]
    assert len(launch) == 1
    argv = shlex.split(shlex.split(launch[0].split("=", 1)[1])[0])
    assert argv[1:] == ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=8"]
    assert "srun" in train and "submitit.core._submit" in train
    assert "#SBATCH --gpus-per-node=1" in predict and "#SBATCH --time=240" in predict
    assert "export OMP_NUM_THREADS=8" in predict
    assert TORCHRUN_ENV not in predict and "torch.distributed.run" not in predict


def test_submitit_local_backend_runs_real_jobs_with_kind_resources(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), *sys.path]))  # the job processes import tests'
    profile = dict(train=dict(gpus=0, nproc_per_node=2, cpus_per_task=1), predict=dict(cpus_per_task=2))
    ex = SlurmExecutor(tmp_path / "submitit", profile, backend="local", poll_s=0.2)
    out = ex.run([Job(probe_job, ("p",), kind="predict"), Job(probe_job, ("t",), kind="train"),
                  Job(pow, (3, 4), kind="evaluate")], "submitit local")
    pred, train, value = out
    assert value == 81
    assert pred["pid"] != os.getpid() and pred["threads"] == 2 and pred["torchrun"] is None
    assert train["torchrun"].endswith("--nproc-per-node=2")
    assert torchrun_command(["-m", "x"])[:1] == [sys.executable] and TORCHRUN_ENV not in os.environ


def test_submitit_path_resumes_from_the_step_cache_and_reports_failures(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), *sys.path]))
    import executor_jobs

    cache = str(tmp_path / "steps")
    ex = SlurmExecutor(tmp_path / "submitit", {}, backend="local", poll_s=0.2)
    first = ex.run([Job(executor_jobs.cached_square, (cache, k), kind="evaluate") for k in (2, 3)], "first")
    assert first == [{"value": 4, "runs": 1}, {"value": 9, "runs": 1}]
    again = ex.run([Job(executor_jobs.cached_square, (cache, k), kind="evaluate") for k in (2, 3, 4)], "again")
    assert again == [{"value": 4, "runs": 1}, {"value": 9, "runs": 1}, {"value": 16, "runs": 1}]  # 2, 3 not redone
    with pytest.raises(PosefixError, match=r"evaluate job 'missing' \(id \d+\) failed: .*FileNotFoundError"):
        ex.run([Job(executor_jobs.fail_if_missing, (str(tmp_path / "nope"),), name="missing")], "fail")


def test_torchrun_command_uses_the_exported_launch(monkeypatch):
    monkeypatch.delenv(TORCHRUN_ENV, raising=False)
    assert torchrun_command(["-m", "posefix_bench.cli", "train"], 2)[-5:] == [
        "--nnodes=1", "--nproc-per-node=2", "-m", "posefix_bench.cli", "train"]
    monkeypatch.setenv(TORCHRUN_ENV, "/opt/py -m torch.distributed.run --standalone --nproc-per-node=8")
    assert torchrun_command(["-m", "m"], 2) == ["/opt/py", "-m", "torch.distributed.run", "--standalone",
                                                 "--nproc-per-node=8", "-m", "m"]


def test_command_line_wiring(tmp_path):
    parser = argparse.ArgumentParser()
    add_executor_arguments(parser)
    spec = Spec(tmp_path, jobs=3, threads=2)
    local = build_executor(parser.parse_args([]), {"slurm": PROFILE}, spec)
    assert isinstance(local, LocalExecutor) and (local.jobs, local.threads) == (3, 2)
    args = parser.parse_args(["--executor", "slurm", "--dry-run", "--slurm-partition", "dev",
                              "--slurm", "train.gpus=4", "--slurm", "evaluate.mem_gb=16"])
    ex = build_executor(args, {"slurm": PROFILE}, spec)
    assert isinstance(ex, SlurmExecutor) and ex.dry_run
    assert ex.folder == Path(spec.cache_root) / "submitit" and ex.dry_run_dir == Path(spec.out_dir) / "slurm-dry-run"
    d = ex.describe()["resources"]
    assert (d["train"]["gpus"], d["train"]["partition"], d["evaluate"]["mem_gb"]) == (4, "dev", 16.0)
    with pytest.raises(PosefixError, match="--dry-run"):
        build_executor(parser.parse_args(["--dry-run"]), {}, spec)
    with pytest.raises(PosefixError, match="profile slurm"):
        build_executor(parser.parse_args(["--executor", "slurm"]), {"slurm": [1]}, spec)


def test_the_coco_profile_asks_for_eight_gpus_per_training():
    from posefix_bench.bench.profile import load_profile

    slurm = load_profile("coco").section("slurm")
    train = slurm_resources(slurm, "train")
    launcher = load_profile("coco").section("train_launcher")
    assert (train.gpus, train.torchrun_nproc) == (8, 8) == (8, launcher["nproc_per_node"])
    assert slurm_resources(slurm, "evaluate").torchrun_nproc is None
