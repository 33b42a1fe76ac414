"""Layer 1: keypoint schemas, results files, COCO access, the top-down crop transform, atomic file I/O."""

from posefix_bench.structures.coco import CocoDataset, PersonArrays, coco_split_paths, default_coco_mini_root
from posefix_bench.structures.results import (
    ABSENT_POLICIES,
    DEFAULT_ABSENT_POLICY,
    ResultArrays,
    absent_mask,
    arrays_to_results,
    load_results,
    results_to_arrays,
    save_results,
    validate_results,
)
from posefix_bench.structures.schema import COCO17, CROWDPOSE14, MPII16, SCHEMAS, KeypointSchema, get_schema

__all__ = [
    "CocoDataset", "PersonArrays", "coco_split_paths", "default_coco_mini_root",
    "ABSENT_POLICIES", "DEFAULT_ABSENT_POLICY", "ResultArrays", "absent_mask", "arrays_to_results",
    "load_results", "results_to_arrays", "save_results", "validate_results",
    "COCO17", "CROWDPOSE14", "MPII16", "SCHEMAS", "KeypointSchema", "get_schema",
]
