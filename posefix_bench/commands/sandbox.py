"""Generate the sandbox data set: procedural multi-person scenes in COCO format, the suite's embedded default data.

Writes a COCO root at --out (``annotations/person_keypoints_{train,val}.json``, ``train/``, ``val/``,
``manifest.json``) atomically, deterministic for a seed, and a contact sheet of validation images with their
ground-truth skeletons (``contact_sheet.png``; joints labelled occluded are hollow). A root that already holds the
same parameters is kept as is; another sandbox root is regenerated; any other existing folder is left alone.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from posefix_bench.commands import _checks

HELP = "generate the procedural sandbox data set (COCO format) and its contact sheet"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from posefix_bench.engine.sandbox.dataset import SandboxParams

    d = SandboxParams()
    p.add_argument("--out", type=Path, required=True, help="COCO root to write")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    p.add_argument("--train", type=int, default=d.train, help="training images (default: %(default)s)")
    p.add_argument("--val", type=int, default=d.val, help="validation images (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=d.image_size, help="image side in px (default: %(default)s)")
    p.add_argument("--max-persons", type=int, default=d.max_persons,
                   help="people per image, 1..N (default: %(default)s)")
    p.add_argument("--occluder-p", type=float, default=d.occluder_p,
                   help="probability of a counter/shelf hiding a person's lower body (default: %(default)s)")
    p.add_argument("--back-p", type=float, default=d.back_p, help="probability of a back view (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="worker processes; the output does not depend on it")
    p.add_argument("--sheet-images", type=int, default=12, help="validation images on the contact sheet")
    p.add_argument("--force", action="store_true", help="regenerate even if --out holds the same parameters")


def write_sandbox_contact_sheet(root: str | os.PathLike, n: int = 12, cols: int = 4) -> Path:
    """``ROOT/contact_sheet.png``: the first ``n`` validation images (training if there are none) with their
    ground-truth skeletons."""
    from posefix_bench.reporting.draw import coco_contact_sheet, write_image
    from posefix_bench.structures.coco import CocoDataset, coco_split_paths

    root = Path(root)
    ann, _ = coco_split_paths(root, "val")
    gt = CocoDataset(ann)
    if not gt.image_ids:
        gt = CocoDataset(coco_split_paths(root, "train")[0])
    sheet = coco_contact_sheet(gt, gt.image_ids[: max(1, n)], cols=cols)
    return write_image(root / "contact_sheet.png", sheet)


def _stats_rows(manifest: dict) -> tuple[list[str], list[list]]:
    splits = [s for s in manifest["splits"] if manifest["splits"][s].get("persons")]
    st = {s: manifest["splits"][s] for s in splits}
    rows = [
        ["images", *[st[s]["images"] for s in splits]],
        ["persons", *[st[s]["persons"] for s in splits]],
        ["persons per image", *[st[s]["persons_per_image"] for s in splits]],
        ["lower-body occluded", *[st[s]["fraction_lower_body_occluded"] for s in splits]],
        ["back views", *[st[s]["fraction_back_view"] for s in splits]],
        ["box height p10 (px)", *[st[s]["box_height_px"]["p10"] for s in splits]],
        ["box height p50 (px)", *[st[s]["box_height_px"]["p50"] for s in splits]],
        ["box height p90 (px)", *[st[s]["box_height_px"]["p90"] for s in splits]],
        ["labelled keypoints/person", *[st[s]["labelled_keypoints_per_person"] for s in splits]],
        ["visible keypoints/person", *[st[s]["visible_keypoints_per_person"] for s in splits]],
        ["persons overlapping others", *[st[s]["fraction_persons_overlapping"] for s in splits]],
    ]
    return ["", *splits], rows


def run(args: argparse.Namespace) -> int:
    import time

    from posefix_bench.engine.sandbox.dataset import SandboxParams, generate_sandbox, is_sandbox_root, read_manifest
    from posefix_bench.errors import PosefixError, file_error
    from posefix_bench.progress import tqdm_progress
    from posefix_bench.reporting.tables import text_table

    params = SandboxParams(seed=args.seed, train=args.train, val=args.val, image_size=args.image_size,
                           max_persons=args.max_persons, occluder_p=args.occluder_p, back_p=args.back_p)
    if args.workers < 1:
        raise PosefixError(f"--workers {args.workers}: must be >= 1")
    if args.sheet_images < 1:
        raise PosefixError(f"--sheet-images {args.sheet_images}: must be >= 1")
    out: Path = args.out
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_sandbox_root(out))):
        raise file_error(out, "exists and is not a sandbox root; choose another --out or remove it")
    _checks.output_dir(out)
    current = is_sandbox_root(out) and read_manifest(out).get("digest") == params.digest()
    if current and not args.force:
        print(f"{out}: up to date (same parameters and generator version)")
    else:
        start = time.perf_counter()
        generate_sandbox(out, params, progress=tqdm_progress, workers=args.workers, replace=True)
        print(f"generated {out} in {time.perf_counter() - start:.1f} s")
    sheet = out / "contact_sheet.png"
    if not sheet.is_file() or not current or args.force:
        write_sandbox_contact_sheet(out, n=args.sheet_images)
    headers, rows = _stats_rows(read_manifest(out))
    print(text_table(headers, rows))
    print(f"contact sheet: {sheet}")
    return 0
