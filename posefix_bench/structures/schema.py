"""Keypoint schemas: the one place where keypoint names, OKS sigmas, flip pairs, body-part groups and skeletons live.

Everything that depends on the keypoint layout (evaluation, diagnosis, synthesis, the refiner's output size, the
plots) takes a :class:`KeypointSchema` instead of assuming COCO-17.

Sources of the constants:
- COCO-17: the COCO keypoint task (names and skeleton from the dataset's ``categories``; sigmas from
  ``pycocotools.cocoeval.Params.setKpParams``, i.e. Ronchi & Perona's per-keypoint standard deviations).
  Body-part groups face / upper / lower follow PoseFix Sec. 4 (joints 0-4, 5-10, 11-16).
- CrowdPose-14: Li et al., "CrowdPose", CVPR 2019 (crowdposetools' sigmas; mmpose ``crowdpose.py`` metainfo).
- MPII-16: Andriluka et al., CVPR 2014, with the sigmas mmpose ships for OKS on MPII (``mpii.py`` metainfo).

A schema can also be read from a COCO-format ``categories`` entry (:meth:`KeypointSchema.from_coco_category`):
known layouts are recognised by their keypoint names, others need per-keypoint ``sigmas`` in the category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from posefix_bench.errors import PosefixError

__all__ = [
    "KeypointSchema",
    "COCO17",
    "CROWDPOSE14",
    "MPII16",
    "SCHEMAS",
    "get_schema",
    "infer_flip_pairs",
]


@dataclass(frozen=True)
class KeypointSchema:
    """A keypoint layout.

    Attributes:
        name: identifier (``coco17``, ``crowdpose14``, ...).
        keypoints: K keypoint names, in dataset order.
        sigmas: K per-keypoint OKS standard deviations (COCO's ``kpt_oks_sigmas``, already divided by 10).
        flip_pairs: (left, right) index pairs swapped by a horizontal flip; their members are each other's
            "symmetric joint" in the error taxonomy (inversion).
        skeleton: 0-based index pairs drawn as limbs.
        groups: body-part group name -> keypoint indices (COCO-17: face / upper / lower).
    """

    name: str
    keypoints: tuple[str, ...]
    sigmas: tuple[float, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    groups: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        object.__setattr__(self, "keypoints", tuple(str(n) for n in self.keypoints))
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        object.__setattr__(self, "flip_pairs", tuple((int(a), int(b)) for a, b in self.flip_pairs))
        object.__setattr__(self, "skeleton", tuple((int(a), int(b)) for a, b in self.skeleton))
        groups = {str(g): tuple(int(i) for i in idx) for g, idx in dict(self.groups).items()}
        if not groups:
            groups = {"all": tuple(range(k))}
        object.__setattr__(self, "groups", MappingProxyType(groups))
        if k == 0:
            raise PosefixError(f"keypoint schema {self.name!r} has no keypoints")
        if len(self.sigmas) != k:
            raise PosefixError(f"keypoint schema {self.name!r}: {len(self.sigmas)} sigmas for {k} keypoints")
        if any(not np.isfinite(s) or s <= 0 for s in self.sigmas):
            raise PosefixError(f"keypoint schema {self.name!r}: sigmas must be finite and positive")
        seen: set[int] = set()
        for a, b in self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b or a in seen or b in seen:
                raise PosefixError(f"keypoint schema {self.name!r}: bad flip pair ({a}, {b})")
            seen.update((a, b))
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise PosefixError(f"keypoint schema {self.name!r}: skeleton link ({a}, {b}) out of range")
        for g, idx in groups.items():
            if any(not 0 <= i < k for i in idx):
                raise PosefixError(f"keypoint schema {self.name!r}: group {g!r} has an index out of range")

    # -- derived views -------------------------------------------------------------------------------------
    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    @property
    def sigma_array(self) -> np.ndarray:
        """(K,) float64 sigmas."""
        return np.asarray(self.sigmas, dtype=np.float64)

    @property
    def flip_index(self) -> np.ndarray:
        """(K,) index of each keypoint's mirror partner (itself when it has none)."""
        idx = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    @property
    def has_partner(self) -> np.ndarray:
        """(K,) bool, True where a keypoint has a left/right partner."""
        return self.flip_index != np.arange(self.num_keypoints)

    def group_index(self) -> np.ndarray:
        """(K,) int: position in ``list(groups)`` of each keypoint's group (-1 if in none)."""
        out = np.full(self.num_keypoints, -1, dtype=np.int64)
        for gi, idx in enumerate(self.groups.values()):
            out[list(idx)] = gi
        return out

    def index(self, name: str) -> int:
        try:
            return self.keypoints.index(name)
        except ValueError:
            raise PosefixError(f"keypoint {name!r} is not in schema {self.name!r}") from None

    # -- COCO categories -----------------------------------------------------------------------------------
    def to_coco_category(self, category_id: int = 1, name: str = "person") -> dict:
        """A COCO ``categories`` entry (1-based skeleton, plus the non-standard ``sigmas`` field)."""
        return {
            "supercategory": "person",
            "id": int(category_id),
            "name": name,
            "keypoints": list(self.keypoints),
            "skeleton": [[a + 1, b + 1] for a, b in self.skeleton],
            "sigmas": list(self.sigmas),
        }

    @classmethod
    def from_coco_category(cls, category: Mapping, source: str = "categories") -> "KeypointSchema":
        """The schema of a COCO ``categories`` entry.

        A built-in schema whose keypoint names equal the category's is returned as is (so COCO files give
        :data:`COCO17`). Otherwise the category must carry ``sigmas`` (K floats); flip pairs are inferred from
        ``left_``/``right_`` name prefixes, the skeleton is read 1-based as COCO stores it, and optional
        ``groups`` (name -> 0-based indices) are honoured.
        """
        names = category.get("keypoints")
        if not isinstance(names, (list, tuple)) or not names:
            raise PosefixError(f"{source}: category {category.get('id')!r} has no 'keypoints' names")
        names = tuple(str(n) for n in names)
        for schema in SCHEMAS.values():
            if schema.keypoints == names:
                return schema
        sigmas = category.get("sigmas")
        if not isinstance(sigmas, (list, tuple)) or len(sigmas) != len(names):
            raise PosefixError(
                f"{source}: category {category.get('id')!r} has {len(names)} keypoints that match no known schema "
                f"({', '.join(SCHEMAS)}) and no 'sigmas' list of {len(names)} OKS sigmas"
            )
        skeleton = [(int(a) - 1, int(b) - 1) for a, b in category.get("skeleton", [])]
        return cls(
            name=str(category.get("schema", category.get("name", "custom"))),
            keypoints=names,
            sigmas=tuple(float(s) for s in sigmas),
            flip_pairs=infer_flip_pairs(names),
            skeleton=tuple(skeleton),
            groups=category.get("groups") or {},
        )


def infer_flip_pairs(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """(left, right) index pairs for names that differ only by a ``left``/``right`` prefix (``_`` or space)."""
    pairs = []
    lookup = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        for left, right in (("left_", "right_"), ("l_", "r_"), ("left ", "right ")):
            if n.startswith(left) and right + n[len(left):] in lookup:
                pairs.append((i, lookup[right + n[len(left):]]))
                break
    return tuple(pairs)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO17 = KeypointSchema(
    name="coco17",
    keypoints=_COCO_NAMES,
    # pycocotools.cocoeval.Params.setKpParams
    sigmas=tuple(s / 10.0 for s in (
        0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89)),
    flip_pairs=infer_flip_pairs(_COCO_NAMES),
    # the COCO person category's skeleton, converted to 0-based
    skeleton=tuple((a - 1, b - 1) for a, b in (
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
        (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))),
    groups={"face": tuple(range(0, 5)), "upper": tuple(range(5, 11)), "lower": tuple(range(11, 17))},
)  # fmt: skip

_CROWDPOSE_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
)  # fmt: skip

CROWDPOSE14 = KeypointSchema(
    name="crowdpose14",
    keypoints=_CROWDPOSE_NAMES,
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    flip_pairs=infer_flip_pairs(_CROWDPOSE_NAMES),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (13, 7), (13, 6), (6, 8), (7, 9), (8, 10),
        (9, 11),
    ),
    groups={"face": (12, 13), "upper": tuple(range(0, 6)), "lower": tuple(range(6, 12))},
)

_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
)  # fmt: skip

MPII16 = KeypointSchema(
    name="mpii16",
    keypoints=_MPII_NAMES,
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072, 0.179, 0.179,
            0.072, 0.062),
    flip_pairs=infer_flip_pairs(_MPII_NAMES),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12), (12, 11), (11, 10),
        (7, 13), (13, 14), (14, 15),
    ),
    groups={"face": (8, 9), "upper": (7, 10, 11, 12, 13, 14, 15), "lower": (0, 1, 2, 3, 4, 5, 6)},
)

SCHEMAS: Mapping[str, KeypointSchema] = MappingProxyType(
    {s.name: s for s in (COCO17, CROWDPOSE14, MPII16)}
)


def get_schema(name: str | KeypointSchema) -> KeypointSchema:
    """A built-in schema by name (``coco17``, ``crowdpose14``, ``mpii16``); a schema passes through."""
    if isinstance(name, KeypointSchema):
        return name
    try:
        return SCHEMAS[name]
    except KeyError:
        raise PosefixError(f"unknown keypoint schema {name!r} (known: {', '.join(SCHEMAS)})") from None
