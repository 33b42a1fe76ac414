"""A profile's dataset given as files in any layout, as mmpose's dataset configs give it (issue 28):

    data=dict(type='coco', ann_file='anns/train.json', img_dir='pics/train',
              val_ann_file='anns/val.json', val_img_dir='pics/val')

(mmpose's ``CocoDataset(ann_file=..., data_prefix=dict(img=...))``). Paths are relative to the working directory.
The keypoint schema comes from each annotation file's keypoint category
(:meth:`posefix_bench.structures.schema.KeypointSchema.from_coco_category`: COCO-17, CrowdPose, MPII, or a custom
category with its ``sigmas``; flip pairs from ``left_``/``right_`` names).

Every step below the bench reads a COCO root (``ROOT/annotations/person_keypoints_<split>.json`` + ``ROOT/<split>/``,
:func:`posefix_bench.structures.coco.coco_split_paths`), so the files are linked into one, in the cache, named by
their absolute paths: :func:`linked_coco_root`. What a step computes is keyed by the annotation files' content
hashes (the data fingerprint), not by these links.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from posefix_bench.errors import file_error
from posefix_bench.hashing import canonical_hash
from posefix_bench.structures.coco import coco_split_paths

__all__ = ["KINDS", "SPEC_KEYS", "SPLITS", "is_file_spec", "check_data_spec", "linked_coco_root"]

KINDS = ("sandbox", "coco-mini", "coco")  # the named forms (posefix_bench.bench.steps.BenchSteps.data)
SPEC_KEYS = ("ann_file", "img_dir", "val_ann_file", "val_img_dir")
SPLITS = ("train", "val")  # the split names of the linked root


def is_file_spec(spec: dict) -> bool:
    """Whether a profile's ``data`` is the file form (``type='coco'``) rather than a ``kind``."""
    return spec.get("type") is not None


def check_data_spec(spec: dict, profile_file: Path) -> None:
    """The ``data`` section's form, checked when the profile loads (no file is opened): a known ``kind``, or
    ``type='coco'`` with its four paths and none of the kind form's keys."""
    if not is_file_spec(spec):
        if spec.get("kind") not in KINDS:
            raise file_error(profile_file, f"data.kind {spec.get('kind')!r} is not known (known: {', '.join(KINDS)}; "
                                           f"or type='coco' with {', '.join(SPEC_KEYS)})")
        return
    if spec.get("type") != "coco":
        raise file_error(profile_file, f"data.type {spec.get('type')!r} is not known (known: coco)")
    for key in ("kind", "train_split", "val_split", "params"):
        if key in spec:
            raise file_error(profile_file, f"data: '{key}' belongs to the kind form; type='coco' names its files "
                                           f"({', '.join(SPEC_KEYS)})")
    for key in SPEC_KEYS:
        if not spec.get(key):
            raise file_error(profile_file, f"data type='coco' lacks '{key}'")


def linked_coco_root(spec: dict, cache_root: Path, profile_file: Path) -> Path:
    """A COCO root under ``cache_root/data/`` whose ``train`` and ``val`` splits link to the spec's files (made
    once; the files are checked first: a missing one is a one-line error naming the profile file)."""
    check_data_spec(spec, profile_file)
    paths = {}
    for key in SPEC_KEYS:
        p = Path(spec[key]).expanduser().absolute()
        if not (p.is_dir() if key.endswith("img_dir") else p.is_file()):
            kind = "folder" if key.endswith("img_dir") else "file"
            raise file_error(profile_file, f"data.{key}: {spec[key]} is not a {kind}")
        paths[key] = p
    root = cache_root / "data" / canonical_hash({k: str(v) for k, v in paths.items()})[:20]
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
    try:
        for split, ann, images in (("train", "ann_file", "img_dir"), ("val", "val_ann_file", "val_img_dir")):
            ann_link, img_link = coco_split_paths(tmp, split)
            ann_link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(paths[ann], ann_link)
            os.symlink(paths[images], img_link, target_is_directory=True)
        os.replace(tmp, root)  # atomic; a concurrent worker that made it first wins
    except OSError:
        if not root.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
