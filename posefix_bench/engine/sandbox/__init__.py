"""The sandbox: the suite's embedded default data, procedural multi-person scenes in COCO format (issue 8).

:mod:`.figure` draws articulated people, :mod:`.scene` composes and labels one image, :mod:`.dataset` writes,
caches and describes a COCO root. Use :func:`ensure_sandbox` (cached) or :func:`generate_sandbox`, then read the
root like COCO (``CocoDataset(coco_split_paths(root, "val")[0])``).
"""

from posefix_bench.engine.sandbox.dataset import (
    GENERATOR_VERSION,
    MANIFEST_FORMAT,
    SPLITS,
    SandboxParams,
    annotation_stats,
    ensure_sandbox,
    generate_sandbox,
    is_sandbox_root,
    occluded_person_ids,
    read_manifest,
)

__all__ = [
    "GENERATOR_VERSION", "MANIFEST_FORMAT", "SPLITS", "SandboxParams", "annotation_stats", "ensure_sandbox",
    "generate_sandbox", "is_sandbox_root", "occluded_person_ids", "read_manifest",
]
