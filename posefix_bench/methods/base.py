"""The refinement-method interface: results in, refined results out, one to one (the mirror image of a source).

PoseFix (Moon et al., CVPR 2019, Sec. 1) is a post-processor: any estimator's COCO keypoint results in, the same
persons' refined keypoints out. The bench compares *methods* of doing that (PoseFix itself, re-estimating each pose
with a top-down estimator, an image-free pose prior, the identity control, any external program or Python callable)
through this one interface. A method subclasses :class:`Method` and implements :meth:`Method.run`:
``run(results, images, gt, progress) -> list[dict]`` with ``images`` the validation image folder and ``gt`` the COCO
annotation file (image files and sizes). Callers use :meth:`Method.refine`, which holds every method to the contract:

- one output record per input record, in the same order, with the same ``image_id`` (and ``category_id``);
- each output's ``keypoints`` a list of 3K finite numbers (K: the input's keypoints);
- every other field of the input record kept as it was (fields a method adds, e.g. ``refine_accepted``, join it),
  plus ``refined_by`` (the method's :attr:`Method.refined_by`);
- keypoints the input did not predict (absent, :func:`posefix_bench.structures.results.absent_mask`) stay absent:
  the input's x, y, confidence are restored there, whatever the method wrote.

A violation is a one-line :class:`~posefix_bench.errors.PosefixError` naming the method. Heavy loading (a network)
goes in :meth:`Method.setup`, so a command can check every argument and input before it (issue 19).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from posefix_bench.errors import PosefixError
from posefix_bench.progress import Progress, no_progress
from posefix_bench.structures.results import DEFAULT_ABSENT_POLICY, absent_mask

__all__ = ["MethodInfo", "Method", "check_one_to_one", "merge_refined"]


@dataclass(frozen=True)
class MethodInfo:
    """What a kind of method is (plain record; :meth:`to_record` gives JSON types).

    Attributes:
        type: its registry name (``posefix``, ``identity``, ``command``, ...).
        description: one line for listings.
        uses_images: whether it reads the images (False: an image-free method).
        learned: whether it has trained weights.
        origin: ``built-in`` or the entry point / package that added it.
    """

    type: str
    description: str = ""
    uses_images: bool = True
    learned: bool = False
    origin: str = "built-in"
    extra: Mapping = field(default_factory=dict)

    def to_record(self) -> dict:
        return asdict(self)


class Method:
    """A refinement method. Subclasses set :attr:`info` and implement :meth:`run` (and :meth:`setup` if they load
    something heavy).

    Args:
        name: the name it reports under (``refined_by``, the bench's tables); default: its type.
        absent_policy: which input keypoints count as not predicted (kept absent in the output).
    """

    info: MethodInfo = MethodInfo(type="method")

    def __init__(self, name: str | None = None, absent_policy: str = DEFAULT_ABSENT_POLICY):
        absent_mask(np.zeros((1, 3)), absent_policy)  # an unknown policy: one line now
        self.name = str(name or self.info.type)
        self.absent_policy = absent_policy
        self.notices: list[str] = []  # one-line notices for the user (a command prints them)
        self._ready = False

    @property
    def refined_by(self) -> str:
        """The ``refined_by`` value of its output records."""
        return self.name

    def setup(self) -> None:
        """Load what the method needs (a network); called once, before the first :meth:`run`."""

    def prepare(self) -> None:
        """:meth:`setup` once (a command calls it after checking its inputs; :meth:`refine` calls it otherwise)."""
        if not self._ready:
            self.setup()
            self._ready = True

    def run(self, results: list[dict], images: Path, gt: Path, progress: Progress = no_progress) -> list[dict]:
        """Refined records for ``results`` (one per input, in order); :meth:`refine` checks and completes them."""
        raise NotImplementedError

    def refine(self, results: Sequence[dict], images: Path, gt: Path, progress: Progress = no_progress) -> list[dict]:
        """``results`` refined by this method: one to one, other fields kept, absent keypoints absent (module doc)."""
        self.prepare()
        records = [dict(r) for r in results]
        if not records:
            return []
        # the method gets its own deep copy: one that edits its input in place cannot change what is kept
        out = self.run(copy.deepcopy(records), Path(images), Path(gt), progress)
        check_one_to_one(self.name, records, out)
        return merge_refined(records, out, self.refined_by, self.absent_policy)


def check_one_to_one(name: str, inputs: Sequence[dict], outputs) -> None:
    """``outputs`` is a list of records one to one with ``inputs``: same length, order, image and category ids,
    keypoint lists of the inputs' length holding finite numbers; else a one-line error naming method ``name``."""
    what = f"method {name!r}: output is not one to one with the input"
    if not isinstance(outputs, (list, tuple)):
        raise PosefixError(f"{what}: expected a list of records, got {type(outputs).__name__}")
    if len(outputs) != len(inputs):
        raise PosefixError(f"{what}: {len(outputs)} records for {len(inputs)} input records")
    for i, (a, b) in enumerate(zip(inputs, outputs)):
        if not isinstance(b, Mapping):
            raise PosefixError(f"{what}: record {i} is a {type(b).__name__}, not an object")
        for key in ("image_id", "category_id"):
            if key in b and b[key] != a[key]:
                raise PosefixError(f"{what}: record {i} has {key} {b[key]!r}, the input record {a[key]!r}")
        kp = b.get("keypoints")
        n = len(a["keypoints"])
        if not isinstance(kp, (list, tuple)) or len(kp) != n:
            got = f"{len(kp)} values" if isinstance(kp, (list, tuple)) else repr(type(kp).__name__)
            raise PosefixError(f"{what}: record {i} 'keypoints' has {got}, expected {n}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in kp):
            raise PosefixError(f"{what}: record {i} 'keypoints' holds a value that is not a finite number")


def merge_refined(inputs: Sequence[dict], outputs: Sequence[Mapping], refined_by: str,
                  absent_policy: str = DEFAULT_ABSENT_POLICY) -> list[dict]:
    """The output records: each input record with the method's keypoints (absent input keypoints restored), the
    fields the method added, and ``refined_by``. Checked outputs only (:func:`check_one_to_one`).

    Shapes: the N records' keypoints as (N, K, 3) arrays.
    """
    kp_in = np.asarray([r["keypoints"] for r in inputs], dtype=np.float64).reshape(len(inputs), -1, 3)
    kp_out = np.asarray([r["keypoints"] for r in outputs], dtype=np.float64).reshape(kp_in.shape)
    absent = absent_mask(kp_in, absent_policy)
    kp_out[absent] = kp_in[absent]
    merged = []
    for i, (a, b) in enumerate(zip(inputs, outputs)):
        rec = {k: v for k, v in b.items() if k not in a}
        rec.update(a)
        if not np.array_equal(kp_out[i], kp_in[i]):  # else the input's list as it was (identity: the same bytes)
            rec["keypoints"] = [float(v) for v in kp_out[i].reshape(-1)]
        rec["refined_by"] = refined_by
        merged.append(rec)
    return merged
