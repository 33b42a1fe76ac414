"""Measure the bench's stages at COCO-val scale: seconds and peak memory per stage at several sizes (issue 20).

Generates (or reuses) the sandbox at COCO val2017's size (5,000 images, about 25,000 persons), then runs source
prediction (synthetic, and an untrained sandbox mmpose estimator), refinement (an untrained ResNet-18 64x48
refiner), evaluation, diagnosis and the diagnosis plots on the first N images for every N of --sizes, each stage in a
fresh process. Writes OUT/scale.json (per size and stage: seconds, peak RSS, ms per person; the linearity check;
the machine) and OUT/scale.png, and prints a table. Exit status 1 when a stage's cost per person at the largest
size exceeds 1.3x that at the smallest. On a shared, loaded machine the seconds are noisy: the record keeps the load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "per-stage seconds and peak memory of the bench at up to COCO-val scale -> scale.json + plot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("reports/scale"), help="report folder (default: %(default)s)")
    p.add_argument("--sizes", default="625,1250,2500,5000",
                   help="comma-separated numbers of validation images, ascending (default: %(default)s)")
    p.add_argument("--val", type=int, default=5000, help="images of the generated validation split (default: 5000)")
    p.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per stage (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="sandbox generation processes (default: %(default)s)")
    p.add_argument("--skip", default="", help="comma-separated stages to leave out (e.g. predict-mmpose)")
    p.add_argument("--peak-sizes", default="512,1024,2048",
                   help="matrix sizes of the fp32 matmul-peak measurement (default: %(default)s)")
    p.add_argument("--cache", type=Path, help="cache root of the generated sandbox (default: $POSEFIX_CACHE or "
                   ".cache/posefix-bench)")
    p.add_argument("--work", type=Path, help="scratch folder for per-size files (default: CACHE/scale-work)")


def run(args: argparse.Namespace) -> int:
    from posefix_bench.bench.scale import COCO_VAL_PARAMS, STAGES, run_scale, write_scale_json
    from posefix_bench.errors import PosefixError
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.reporting.scale_plots import REPORTS_STAGE, save_scale_plot
    from posefix_bench.reporting.tables import text_table
    from posefix_bench.structures.coco import default_cache_root

    def ints(text: str, flag: str) -> list[int]:
        try:
            return [int(s) for s in text.split(",") if s.strip()]
        except ValueError:
            raise PosefixError(f"{flag} {text!r}: expected comma-separated integers") from None

    sizes, peak_sizes = ints(args.sizes, "--sizes"), ints(args.peak_sizes, "--peak-sizes")
    stages = {**STAGES, **REPORTS_STAGE}
    skip = [s.strip() for s in args.skip.split(",") if s.strip()]
    unknown = sorted(set(skip) - set(stages))
    if unknown:
        raise PosefixError(f"--skip {unknown[0]!r}: unknown stage (stages: {', '.join(stages)})")
    stages = {k: v for k, v in stages.items() if k not in skip}
    if "predict-synthetic" not in stages and any(s in stages for s in ("refine", "evaluate", "diagnose")):
        raise PosefixError("--skip predict-synthetic: refine, evaluate and diagnose read its results")
    cache = args.cache or default_cache_root()
    params = dict(COCO_VAL_PARAMS, val=args.val)
    record = run_scale(cache / "sandbox", args.work or cache / "scale-work", sizes, params, stages, threads=args.threads,
                       workers=args.workers, peak_sizes=peak_sizes, progress=tqdm_progress, log=print)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_scale_json(record, args.out)
    plot = save_scale_plot(record, args.out / "scale.png")
    names = list(record["sizes"][-1]["stages"])
    rows = [[f"{s['images']:,}", f"{s['persons']:,}", *[f"{s['stages'][n]['ms_per_person']:.2f}" for n in names]]
            for s in record["sizes"]]
    print(text_table(["images", "persons", *[f"{n} ms/person" for n in names]], rows))
    lin = record["linearity"]
    print(text_table(["stage", "per person, largest/smallest: wall", "CPU", "ok (CPU <= 1.3)"],
                     [[n, f"{lin[n]['ratio']:.2f}", f"{lin[n]['cpu_ratio']:.2f}", "yes" if lin[n]["ok"] else "NO"]
                      for n in names]))
    full = record["full_size"]
    print(f"peak memory at full size ({full['persons']:,} persons): {full['peak_rss_mb']:.0f} MB "
          f"({full['peak_stage']})")
    print(f"wrote {path} and {plot}")
    return 0 if all(v["ok"] for v in lin.values()) else 1
