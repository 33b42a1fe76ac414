"""Run a bench profile end to end: data, upstream sources, refiner ablations, refinement, AP, diagnosis, FPS.

Writes ``<out>/<profile>/bench.json`` (every number), ``<out>/<profile>/index.md`` (all ablations side by side) and
``<out>/<profile>/<ablation>/report.md`` with ``metrics.json`` and PNG plots. Steps are cached by content hash under
the cache folder, so a second run with nothing changed only rewrites the reports, and a killed run resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run a bench profile (quick, coco-mini, coco) and write its reports"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help="profile name (a folder of ablations/) or folder (default: quick)")
    p.add_argument("--coco-root", type=Path, help="COCO root for the coco and coco-mini profiles")
    p.add_argument("--out", type=Path, default=None, help="reports folder (default: reports/ in the repository)")
    p.add_argument("--cache", type=Path, default=None,
                   help="step cache (default: $POSEFIX_CACHE or .cache/posefix-bench in the repository)")
    p.add_argument("--only", nargs="+", metavar="PATTERN", help="run only the ablations matching these globs")
    p.add_argument("--jobs", type=int, default=2, help="independent steps run at once (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    import time

    from posefix_bench.bench.profile import ABLATIONS_DIR
    from posefix_bench.bench.runner import RunSpec, run_bench
    from posefix_bench.errors import PosefixError
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.reporting.bench_report import write_reports
    from posefix_bench.structures.coco import default_cache_root
    from posefix_bench.structures.io import atomic_write_json

    if args.jobs < 1 or args.threads < 1:
        raise PosefixError("--jobs and --threads must be >= 1")
    out_root = args.out or ABLATIONS_DIR.parent / "reports"
    cache = args.cache or default_cache_root()
    spec = RunSpec(profile=args.profile, out_dir=str(out_root), cache_root=str(cache),
                   only=tuple(args.only) if args.only else None,
                   coco_root=str(args.coco_root) if args.coco_root else None, device=args.device,
                   jobs=args.jobs, threads=args.threads)
    t0 = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {line}", flush=True)

    record = run_bench(spec, progress=tqdm_progress, log=log)
    out_dir = out_root / record.profile
    atomic_write_json(out_dir / "bench.json", record.to_dict())
    if record.data.kind == "sandbox":  # what the generated data looks like, for the index and the README
        from posefix_bench.reporting.draw import coco_contact_sheet, write_image
        from posefix_bench.structures.coco import CocoDataset, coco_split_paths

        val = CocoDataset(coco_split_paths(record.data.root, record.data.val_split)[0])
        sheet = coco_contact_sheet(val, val.image_ids[:8], cols=4, tile=(192, 192))
        write_image(out_dir / "contact_sheet.png", sheet)
    index = write_reports(record, out_dir)
    log(f"wrote {index} ({len(record.ablations)} ablations; bench.json and per-ablation reports beside it)")
    return 0
