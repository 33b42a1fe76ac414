"""Run a bench profile end to end: data, upstream sources, refiner ablations, refinement, AP, diagnosis, FPS.

Writes ``<out>/<profile>/bench.json`` (the typed record: every number), ``<out>/<profile>/index.md`` (all ablations
side by side) and ``<out>/<profile>/<ablation>/report.md`` with ``metrics.json`` and its plots, and leaves the
profile's default trained refiner at ``work_dirs/<profile>/default.pth`` (seed 0, with its calibrated refinement gate
where the bench calibrated one: ``posefix-bench refine`` applies it by default). Steps are cached by content hash under
the cache folder, so a second run with nothing changed only rewrites the reports, and a killed run resumes.
``--smoke`` runs every step of a profile at the smallest size (e.g. the coco profile on coco-mini, before anyone
queues it on a cluster); ``--executor slurm`` submits the steps as Slurm jobs (``--dry-run``: write the scripts);
``--render-only`` rewrites the reports from the last run's ``bench.json`` without running a step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "run a bench profile (quick, coco-mini, coco) and write its reports"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from posefix_bench.bench.executors import add_executor_arguments

    p.add_argument("--profile", default="quick", help="profile name (a folder of ablations/) or folder (default: quick)")
    p.add_argument("--coco-root", type=Path, help="COCO root for the coco and coco-mini profiles")
    p.add_argument("--out", type=Path, default=None, help="reports folder (default: reports/ in the repository)")
    p.add_argument("--cache", type=Path, default=None,
                   help="step cache (default: $POSEFIX_CACHE or .cache/posefix-bench in the repository)")
    p.add_argument("--only", nargs="+", metavar="PATTERN", help="run only the ablations matching these globs")
    p.add_argument("--jobs", type=int, default=2, help="independent steps run at once (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job (default: %(default)s)")
    _checks.add_device(p)
    p.add_argument("--smoke", action="store_true",
                   help="every step of the profile at the smallest size: a few validation images, 2 training "
                        "iterations through torchrun's 2 CPU processes where the profile uses torchrun, model-zoo "
                        "estimators without a local checkpoint run with UNTRAINED weights (marked)")
    p.add_argument("--render-only", action="store_true",
                   help="rewrite the reports from <out>/<profile>/bench.json, the record of the last run, without "
                        "running any step (after a change of the report code); its numbers and times stay those of "
                        "the run that made it, and the cache it points to must still be there")
    p.add_argument("--work-dirs", type=Path, default=Path("work_dirs"),
                   help="where the default trained refiner is left as <profile>/default.pth (default: %(default)s)")
    add_executor_arguments(p)


def run(args: argparse.Namespace) -> int:
    import time

    from posefix_bench.bench.profile import ABLATIONS_DIR, load_profile
    from posefix_bench.structures.coco import default_cache_root

    # the validation pass, before any work
    _checks.at_least(args.jobs, 1, "--jobs")
    _checks.at_least(args.threads, 1, "--threads")
    _checks.device(args.device)
    _checks.input_dir(args.coco_root, "--coco-root", "COCO root")
    out_root = _checks.output_dir(args.out or ABLATIONS_DIR.parent / "reports")
    cache = _checks.output_dir(args.cache or default_cache_root(), "--cache")
    _checks.output_dir(args.work_dirs, "--work-dirs")
    profile = load_profile(args.profile, list(args.only) if args.only else None)
    if args.render_only:
        return _render_only(out_root / (profile.name + ("-smoke" if args.smoke else "")))

    from posefix_bench.bench.executors import DryRunStop, build_executor
    from posefix_bench.bench.runner import RunSpec, run_bench
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.record.schema import keep_computing_run
    from posefix_bench.reporting.bench_report import write_reports
    from posefix_bench.structures.io import atomic_write_json

    spec = RunSpec(profile=args.profile, out_dir=str(out_root), cache_root=str(cache),
                   only=tuple(args.only) if args.only else None,
                   coco_root=str(args.coco_root) if args.coco_root else None, device=args.device,
                   jobs=args.jobs, threads=args.threads, smoke=args.smoke)
    t0 = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {line}", flush=True)

    executor = build_executor(args, {"slurm": profile.section("slurm")}, spec, tqdm_progress, log)
    try:
        record = run_bench(spec, progress=tqdm_progress, log=log, executor=executor)
    except DryRunStop as stop:
        for script in stop.scripts:
            print(f"wrote {script}")
        print(stop)
        return 0
    _checks.print_warnings("bench", record.data_warnings)
    out_dir = out_root / (record.profile + ("-smoke" if args.smoke else ""))
    record = keep_computing_run(record, _previous_record(out_dir / "bench.json"))
    atomic_write_json(out_dir / "bench.json", record.to_dict())
    if record.data.kind == "sandbox":  # what the generated data looks like, for the index and the README
        from posefix_bench.reporting.draw import coco_contact_sheet, write_image
        from posefix_bench.structures.coco import CocoDataset, coco_split_paths

        val = CocoDataset(coco_split_paths(record.data.root, record.data.val_split)[0])
        sheet = coco_contact_sheet(val, val.image_ids[:8], cols=4, tile=(192, 192))
        write_image(out_dir / "contact_sheet.png", sheet)
    index = write_reports(record, out_dir)
    log(f"wrote {index} ({len(record.ablations)} ablations; bench.json and per-ablation reports beside it)")
    if record.default_ablation in {a.name for a in record.ablations} and not args.smoke:
        log(f"wrote {_leave_default(record, args.work_dirs / record.profile / 'default.pth')}")
    return 0


def _previous_record(path: Path):
    """The last run's record at ``path``, or None where there is none or it cannot be read (an older format)."""
    from posefix_bench.errors import PosefixError
    from posefix_bench.record.schema import BenchRecord
    from posefix_bench.structures.io import read_json

    if not path.is_file():
        return None
    try:
        return BenchRecord.from_dict(read_json(path, "bench record"))
    except PosefixError:
        return None


def _render_only(out_dir: Path) -> int:
    """The reports of ``out_dir`` written again from its ``bench.json`` (reporting renders a record: no step runs)."""
    from posefix_bench.errors import file_error
    from posefix_bench.record.schema import BenchRecord
    from posefix_bench.reporting.bench_report import write_reports
    from posefix_bench.structures.io import read_json

    path = out_dir / "bench.json"
    if not path.is_file():
        raise file_error(path, "no bench record to render (run the bench first; bench.json is written by a run, "
                               "not committed)")
    index = write_reports(BenchRecord.from_dict(read_json(path, "bench record")), out_dir)
    print(f"wrote {index} from {path} (no step run)")
    return 0


def _leave_default(record, path: Path) -> Path:
    """The profile's default refiner (first seed) where users look for it (mmpose's ``work_dirs/`` habit): its
    calibrated checkpoint (with the gate) where the bench calibrated one, else the trained one."""
    import shutil

    from posefix_bench.structures.io import atomic_write_with

    a = record.ablation(record.default_ablation)
    source = Path(a.run(a.seeds[0], record.source_names[0]).checkpoint)
    if a.gate is not None and a.gate.state == "calibrated":
        source = Path(a.gate.calibrations[str(a.seeds[0])]["checkpoint"])
    return atomic_write_with(path, lambda tmp: shutil.copyfile(source, tmp))
