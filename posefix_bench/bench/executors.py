"""Where the bench's independent steps run: a local process pool, or Slurm jobs submitted through submitit.

The bench hands an executor a list of :class:`Job` (a picklable module-level function, its arguments, a ``kind``
and a display name) and gets the results back in order: ``executor.run(jobs, desc) -> list``. A phase is one such
call; steps that depend on a phase's results (refine-and-evaluate after training) are submitted after it returns.
Each job function does its work through the bench's content-hash step cache (:mod:`posefix_bench.bench.cache`),
so where it ran does not matter: a killed or partial run, local or on a cluster, resumes from the steps that are
done, and a job marked ``cached`` (its step is known to be done) is answered in the calling process instead of
waiting in a queue.

- ``local`` (default): ``jobs`` worker processes (spawn start method: never fork a process that holds torch's
  thread pools) with ``threads`` torch threads each; ``jobs=1`` runs in the calling process.
- ``slurm``: one Slurm job per step through submitit (Meta's library for launching Python functions on Slurm, as
  the FAIR training repositories use it). Resources per kind (partition, GPUs, CPUs per task, memory, time limit)
  come from the profile's ``slurm`` dict, overridden on the command line (:func:`add_executor_arguments`). A
  training job is one Slurm job holding ``gpus`` GPUs on one node; its script exports the torchrun launch
  (``POSEFIX_TORCHRUN``: ``torch.distributed.run --standalone --nproc-per-node=<gpus>``) that the training step
  runs its processes with (:func:`torchrun_command`), one per GPU, as mmpose's ``tools/slurm_train.sh`` does with
  srun. ``dry_run`` writes each job's sbatch script (submitit's own text, ``#SBATCH`` resources included) and
  stops with :class:`DryRunStop` instead of submitting. ``backend="local"`` runs the same jobs through submitit's
  ``LocalExecutor`` (real subprocesses on this machine: the tests, and a check of a setup before queueing).
"""

from __future__ import annotations

import abc
import os
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from posefix_bench.errors import PosefixError
from posefix_bench.progress import Progress, no_progress

__all__ = [
    "KINDS", "TORCHRUN_ENV", "RESOURCE_KEYS", "Job", "Executor", "LocalExecutor", "SlurmExecutor", "DryRunStop",
    "EXECUTORS", "SlurmResources", "slurm_resources", "torchrun_command", "run_job", "probe_job",
    "add_executor_arguments", "build_executor",
]  # fmt: skip

KINDS = ("train", "predict", "evaluate")
TORCHRUN_ENV = "POSEFIX_TORCHRUN"  # the torchrun launch a training job's processes start with (set by the executor)
# per-kind resource keys of a profile's ``slurm`` dict (and of ``--slurm KIND.KEY=VALUE``)
RESOURCE_KEYS = {"partition": str, "gpus": int, "cpus_per_task": int, "mem_gb": float, "timeout_min": int,
                 "nproc_per_node": int, "account": str, "qos": str, "constraint": str}
_DEFAULTS = {"gpus": 0, "cpus_per_task": 1, "mem_gb": 8.0, "timeout_min": 60}
_GLOBAL_KEYS = ("setup", "python", "additional_parameters")  # profile-level only

Log = Callable[[str], None]


@dataclass(frozen=True)
class Job:
    """One independent bench step.

    Attributes:
        fn: a module-level function (pickled by reference into a worker or a Slurm job); called as ``fn(*args)``.
        args: picklable arguments.
        kind: ``train``, ``predict`` or ``evaluate`` (selects the Slurm resources).
        name: what progress lines and Slurm call the job (default: the function's name).
        cached: the bench knows the job's step is done: it is answered in the calling process from the cache.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    kind: str = "evaluate"
    name: str = ""
    cached: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PosefixError(f"job {self.name or self.fn!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        qual = getattr(self.fn, "__qualname__", "")
        if not callable(self.fn) or "<locals>" in qual or "<lambda>" in qual:
            raise PosefixError(f"job {self.name or qual!r}: the function must be defined at module level (picklable)")
        object.__setattr__(self, "args", tuple(self.args))
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__name__", "job"))


def run_job(job: Job, threads: int | None = None) -> Any:
    """Run one job in this process with ``threads`` torch threads (None: leave as is)."""
    if threads:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        else:  # torch reads these when (and if) the job imports it: no import cost for jobs without torch
            os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(int(threads))
    return job.fn(*job.args)


def probe_job(tag: str = "") -> dict:
    """What a job process sees (process id, torch threads, the torchrun launch, visible GPUs): a real job for
    checking an executor's setup (the tests use it)."""
    import torch

    return {"tag": tag, "pid": os.getpid(), "threads": torch.get_num_threads(),
            "torchrun": os.environ.get(TORCHRUN_ENV), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def torchrun_command(module_argv: Sequence[str], nproc_per_node: int = 1) -> list[str]:
    """The command that runs ``python <module_argv>`` (e.g. ``-m posefix_bench.cli train ...``) as one process per
    GPU: the launch the executor exported in ``$POSEFIX_TORCHRUN`` (a Slurm training job), else a standalone
    torchrun with ``nproc_per_node`` processes on this machine."""
    launch = os.environ.get(TORCHRUN_ENV)
    if launch:
        return shlex.split(launch) + list(module_argv)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
            f"--nproc-per-node={int(nproc_per_node)}", *module_argv]


class DryRunStop(Exception):
    """Raised by a dry-run executor after writing a phase's job scripts: later phases need this phase's results."""

    def __init__(self, scripts: list[Path], desc: str):
        self.scripts, self.desc = list(scripts), desc
        folder = scripts[0].parent if scripts else "(none)"
        super().__init__(f"dry run: wrote {len(scripts)} job script(s) of phase '{desc}' to {folder}; nothing was "
                         "submitted (the next phases depend on these jobs' results)")


class Executor(abc.ABC):
    """Runs a phase of independent jobs; results in job order. A failed job stops the phase with its error."""

    name = "executor"

    def __init__(self, progress: Progress = no_progress, log: Log = lambda line: None):
        self.progress, self.log = progress, log

    def run(self, jobs: Sequence[Job], desc: str) -> list:
        jobs = list(jobs)
        results: list = [None] * len(jobs)
        todo = []
        for i, job in enumerate(jobs):
            if job.cached:  # answered from the step cache, no queue
                results[i] = run_job(job)
            else:
                todo.append(i)
        if todo:
            for i, res in zip(todo, self._run([jobs[i] for i in todo], desc)):
                results[i] = res
        return results

    @abc.abstractmethod
    def _run(self, jobs: list[Job], desc: str) -> list:
        """Run jobs that are not cached; results in order."""

    @abc.abstractmethod
    def describe(self) -> dict:
        """A plain record of how steps run (for the bench's environment record)."""


class LocalExecutor(Executor):
    """``jobs`` spawned worker processes with ``threads`` torch threads each (``jobs=1``: this process)."""

    name = "local"

    def __init__(self, jobs: int = 2, threads: int = 1, progress: Progress = no_progress,
                 log: Log = lambda line: None):
        super().__init__(progress, log)
        if int(jobs) < 1 or int(threads) < 1:
            raise PosefixError(f"local executor: jobs and threads must be >= 1, got jobs={jobs} threads={threads}")
        self.jobs, self.threads = int(jobs), int(threads)

    def describe(self) -> dict:
        return {"executor": self.name, "jobs": self.jobs, "threads_per_job": self.threads}

    def _run(self, jobs: list[Job], desc: str) -> list:
        if self.jobs == 1 or len(jobs) == 1:
            out = []
            for job in self.progress(jobs, total=len(jobs), desc=desc):
                out.append(run_job(job, self.threads))
                self.log(f"done: {job.name}")
            return out
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = mp.get_context("spawn")  # never fork a process that holds torch's thread pools
        with ProcessPoolExecutor(max_workers=min(self.jobs, len(jobs)), mp_context=ctx) as pool:
            futures = [pool.submit(run_job, job, self.threads) for job in jobs]
            names = {f: job.name for f, job in zip(futures, jobs)}

            def finished():
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in done:
                        if f.exception() is not None:
                            for other in pending:
                                other.cancel()
                            raise f.exception()
                        self.log(f"done: {names[f]}")
                        yield f

            for _ in self.progress(finished(), total=len(jobs), desc=desc):
                pass
            return [f.result() for f in futures]


@dataclass(frozen=True)
class SlurmResources:
    """What one job of a kind asks Slurm for (see :func:`slurm_resources`)."""

    kind: str
    partition: str | None = None
    gpus: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 8.0
    timeout_min: int = 60
    nproc_per_node: int | None = None  # torchrun processes of a training job (default: one per GPU)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    additional_parameters: dict = field(default_factory=dict)

    @property
    def torchrun_nproc(self) -> int | None:
        """Processes a training job launches with torchrun (None: not a torchrun job)."""
        if self.kind != "train":
            return None
        return self.nproc_per_node or (self.gpus or None)

    def submitit_parameters(self, name: str, python: str) -> dict:
        """Parameters for ``submitit.SlurmExecutor.update_parameters`` (sbatch names)."""
        setup = list(self.setup)
        nproc = self.torchrun_nproc
        # threads per process, set before anything imports torch (a torchrun job shares its CPUs among its ranks)
        threads = max(1, int(self.cpus_per_task) // (nproc or 1))
        setup += [f"export OMP_NUM_THREADS={threads}", f"export MKL_NUM_THREADS={threads}"]
        if nproc:
            launch = f"{python} -m torch.distributed.run --standalone --nnodes=1 --nproc-per-node={nproc}"
            setup.append(f"export {TORCHRUN_ENV}={shlex.quote(launch)}")
        params = {"job_name": name, "time": int(self.timeout_min), "mem": f"{int(round(self.mem_gb))}GB",
                  "cpus_per_task": int(self.cpus_per_task), "ntasks_per_node": 1, "nodes": 1, "setup": setup}
        if self.gpus:
            params["gpus_per_node"] = int(self.gpus)
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key):
                params[key] = getattr(self, key)
        if self.additional_parameters:
            params["additional_parameters"] = dict(self.additional_parameters)
        return params


def _coerce(key: str, value: Any, where: str) -> Any:
    kind = RESOURCE_KEYS.get(key)
    if kind is None:
        raise PosefixError(f"{where}: unknown Slurm resource {key!r} (known: {', '.join(RESOURCE_KEYS)})")
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise PosefixError(f"{where}: {key}={value!r} is not a {kind.__name__}") from None
    if kind in (int, float) and v < 0:
        raise PosefixError(f"{where}: {key}={value!r} must be >= 0")
    return v


def slurm_resources(profile: dict | None, kind: str, overrides: Sequence[str] = ()) -> SlurmResources:
    """Resources of one job kind: defaults, then the profile's ``slurm`` top-level keys (every kind), then its
    ``slurm[kind]`` dict, then command-line overrides ``KEY=VALUE`` (every kind) or ``KIND.KEY=VALUE``.

    Example profile entry::

        slurm=dict(partition='gpu', setup=['source .venv/bin/activate'],
                   train=dict(gpus=8, cpus_per_task=64, mem_gb=480, timeout_min=4320),
                   predict=dict(gpus=1, cpus_per_task=8, mem_gb=64, timeout_min=240),
                   evaluate=dict(gpus=1, cpus_per_task=8, mem_gb=64, timeout_min=240))
    """
    if kind not in KINDS:
        raise PosefixError(f"slurm: unknown job kind {kind!r} (known: {', '.join(KINDS)})")
    profile = dict(profile or {})
    values: dict[str, Any] = dict(_DEFAULTS)
    for key, v in profile.items():
        if key in KINDS or key in _GLOBAL_KEYS:
            continue
        values[key] = _coerce(key, v, "profile slurm")
    per_kind = profile.get(kind) or {}
    if not isinstance(per_kind, dict):
        raise PosefixError(f"profile slurm.{kind}: expected a dict of resources, got {per_kind!r}")
    for key, v in per_kind.items():
        values[key] = _coerce(key, v, f"profile slurm.{kind}")
    for item in overrides:
        key, sep, v = str(item).partition("=")
        if not sep or not key:
            raise PosefixError(f"--slurm {item!r}: expected KEY=VALUE or KIND.KEY=VALUE (e.g. train.gpus=4)")
        scope, dot, name = key.partition(".")
        if dot and scope not in KINDS:
            raise PosefixError(f"--slurm {item!r}: unknown job kind {scope!r} (known: {', '.join(KINDS)})")
        if not dot or scope == kind:
            values[name if dot else key] = _coerce(name if dot else key, v, f"--slurm {item}")
    setup = profile.get("setup") or ()
    if isinstance(setup, str) or not all(isinstance(s, str) for s in setup):
        raise PosefixError(f"profile slurm.setup: expected a list of shell lines, got {setup!r}")
    return SlurmResources(kind=kind, setup=tuple(setup),
                          additional_parameters=dict(profile.get("additional_parameters") or {}), **values)


def _submitit():
    try:
        import submitit
    except ImportError:  # pragma: no cover - submitit is a declared dependency
        raise PosefixError("executor slurm: the submitit package is not installed (make setup)") from None
    return submitit


def _dry_run_slurm_class():
    """submitit's SlurmExecutor, usable where ``srun`` is absent: only to render scripts, never to submit."""
    submitit = _submitit()

    class _ScriptOnlySlurmExecutor(submitit.SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1

    return _ScriptOnlySlurmExecutor


class SlurmExecutor(Executor):
    """One Slurm job per step through submitit (see the module docstring).

    Args:
        folder: submitit's folder (job pickles, results, logs); must be on a file system the nodes share.
        profile: the profile's ``slurm`` dict; overrides: ``--slurm KEY=VALUE`` items.
        dry_run: write the scripts under ``dry_run_dir`` and raise :class:`DryRunStop` instead of submitting.
        backend: ``slurm``, or ``local`` (submitit's LocalExecutor: real job processes on this machine).
        python: the interpreter the jobs start (default: this one, or the profile's ``python``).
        poll_s: seconds between status polls.
    """

    name = "slurm"

    def __init__(self, folder: str | os.PathLike, profile: dict | None = None, overrides: Sequence[str] = (),
                 dry_run: bool = False, dry_run_dir: str | os.PathLike | None = None, backend: str = "slurm",
                 python: str | None = None, poll_s: float = 10.0, progress: Progress = no_progress,
                 log: Log = lambda line: None):
        super().__init__(progress, log)
        if backend not in ("slurm", "local"):
            raise PosefixError(f"executor slurm: backend must be 'slurm' or 'local', got {backend!r}")
        self.folder = Path(folder)
        self.profile = dict(profile or {})
        self.overrides = tuple(overrides)
        self.resources = {k: slurm_resources(self.profile, k, self.overrides) for k in KINDS}
        self.dry_run, self.backend, self.poll_s = bool(dry_run), backend, float(poll_s)
        self.dry_run_dir = Path(dry_run_dir) if dry_run_dir else self.folder / "dry-run"
        self.python = python or self.profile.get("python") or shlex.quote(sys.executable)
        self._written = 0

    def describe(self) -> dict:
        return {"executor": self.name, "backend": self.backend, "folder": str(self.folder),
                "resources": {k: {f: getattr(r, f) for f in ("partition", "gpus", "cpus_per_task", "mem_gb",
                                                             "timeout_min", "nproc_per_node")}
                              for k, r in self.resources.items()}}

    def _executor(self, job: Job, script_only: bool = False):
        submitit = _submitit()
        res = self.resources[job.kind]
        params = res.submitit_parameters(_slurm_name(job), self.python)
        if self.backend == "local" and not script_only:
            ex = submitit.LocalExecutor(folder=self.folder / "%j", python=self.python)
            ex.update_parameters(timeout_min=int(res.timeout_min), gpus_per_node=int(res.gpus),
                                 setup=params["setup"])
            return ex
        cls = _dry_run_slurm_class() if script_only else submitit.SlurmExecutor
        ex = cls(folder=self.folder / "%j", python=self.python)
        try:
            ex.update_parameters(**params)
        except ValueError as e:  # submitit's check of the sbatch parameters
            raise PosefixError(f"slurm resources of {job.kind} jobs: {str(e).splitlines()[0]}") from None
        return ex

    def script(self, job: Job) -> str:
        """The sbatch script submitit writes for ``job`` (resources, setup with the torchrun launch, command)."""
        ex = self._executor(job, script_only=True)
        return ex._make_submission_file_text(ex._submitit_command_str, uuid.uuid4().hex)

    def _run(self, jobs: list[Job], desc: str) -> list:
        if self.dry_run:
            self.dry_run_dir.mkdir(parents=True, exist_ok=True)
            written = []
            for job in jobs:
                self._written += 1
                path = self.dry_run_dir / f"{self._written:03d}-{_slurm_name(job)}.sbatch"
                path.write_text(self.script(job))
                written.append(path)
            raise DryRunStop(written, desc)
        submitted = []
        try:
            for job in jobs:
                sub = self._executor(job).submit(run_job, job)  # threads: OMP_NUM_THREADS of the job's setup
                self.log(f"submitted {job.kind} job {sub.job_id}: {job.name}")
                submitted.append(sub)
            return self._wait(jobs, submitted, desc)
        except BaseException:
            for sub in submitted:  # results already written stay in the step cache; a rerun resumes from them
                if not sub.done():
                    sub.cancel(check=False)
            raise

    def _wait(self, jobs: list[Job], submitted: list, desc: str) -> list:
        def finished():
            pending = list(range(len(submitted)))
            while pending:
                still = []
                for i in pending:
                    if not submitted[i].done():
                        still.append(i)
                        continue
                    _check(jobs[i], submitted[i])
                    self.log(f"done: {jobs[i].name} (job {submitted[i].job_id})")
                    yield i
                pending = still
                if pending:
                    time.sleep(self.poll_s)

        for _ in self.progress(finished(), total=len(jobs), desc=desc):
            pass
        return [sub.result() for sub in submitted]


def _slurm_name(job: Job) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in job.name)
    return f"posefix-{job.kind}-{safe}"[:120]


def _check(job: Job, sub) -> None:
    """A finished submitit job that failed becomes a one-line error naming the job and its log."""
    err = sub.exception()
    if err is None:
        return
    text = str(err)
    if "Traceback" in text:  # submitit's FailedJobError: the job's traceback between two dashed rules
        text = text[text.index("Traceback"):].split("\n-----", 1)[0]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(err).__name__
    raise PosefixError(f"{job.kind} job {job.name!r} (id {sub.job_id}) failed: {last} (log: {sub.paths.stderr})")


EXECUTORS: dict[str, Callable[..., Executor]] = {"local": LocalExecutor, "slurm": SlurmExecutor}


def add_executor_arguments(parser) -> None:
    """``--executor``, ``--slurm KEY=VALUE``, ``--slurm-partition``, ``--slurm-folder``, ``--dry-run``."""
    g = parser.add_argument_group("executor (where independent steps run)")
    g.add_argument("--executor", choices=sorted(EXECUTORS), default="local",
                   help="local: a process pool of --jobs workers (default); slurm: one Slurm job per step (submitit)")
    g.add_argument("--slurm", action="append", default=[], metavar="[KIND.]KEY=VALUE",
                   help="override a Slurm resource of the profile, for every kind or one (train, predict, evaluate); "
                        f"keys: {', '.join(RESOURCE_KEYS)}; e.g. --slurm train.gpus=4 --slurm mem_gb=64")
    g.add_argument("--slurm-partition", default=None, help="Slurm partition for every job (same as --slurm partition=P)")
    g.add_argument("--slurm-folder", default=None,
                   help="submitit folder for job pickles and logs, on a shared file system (default: CACHE/submitit)")
    g.add_argument("--dry-run", action="store_true",
                   help="with --executor slurm: write the job scripts of the first phase to submit, submit nothing")


def build_executor(args, profile: dict | None, spec, progress: Progress = no_progress,
                   log: Log = lambda line: None) -> Executor:
    """The executor the command line asks for.

    Args:
        args: parsed arguments (see :func:`add_executor_arguments`).
        profile: the profile's raw dict; its ``slurm`` entry holds the Slurm resources.
        spec: the run's :class:`~posefix_bench.bench.runner.RunSpec`-like object (``jobs``, ``threads``,
            ``cache_root``, ``out_dir``).
    """
    name = getattr(args, "executor", "local") or "local"
    if name not in EXECUTORS:
        raise PosefixError(f"--executor {name!r}: unknown (known: {', '.join(sorted(EXECUTORS))})")
    if getattr(args, "dry_run", False) and name != "slurm":
        raise PosefixError("--dry-run: only with --executor slurm (it writes the Slurm job scripts)")
    if name == "local":
        return LocalExecutor(jobs=spec.jobs, threads=spec.threads, progress=progress, log=log)
    overrides = list(getattr(args, "slurm", None) or [])
    if getattr(args, "slurm_partition", None):
        overrides.insert(0, f"partition={args.slurm_partition}")
    slurm = (profile or {}).get("slurm") or {}
    if not isinstance(slurm, dict):
        raise PosefixError(f"profile slurm: expected a dict, got {slurm!r}")
    folder = Path(getattr(args, "slurm_folder", None) or Path(spec.cache_root) / "submitit")
    return SlurmExecutor(folder, slurm, overrides, dry_run=bool(getattr(args, "dry_run", False)),
                         dry_run_dir=Path(spec.out_dir) / "slurm-dry-run", progress=progress, log=log)
