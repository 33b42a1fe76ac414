"""Error mixes: the per-keypoint probabilities of the five error classes that input-pose synthesis draws from.

The published mix (``paper``) is the table of PoseFix (Moon et al., CVPR 2019, Sec. 4), built from Ronchi &
Perona's statistics of COCO 2016 entries (ICCV 2017, Sec. 4). For joint j of a person with V labelled keypoints
and O overlapping people (``codecs.taxonomy.labelled_counts`` / ``overlap_counts``):

- jitter: V <= 10: nose/knees/ankles 0.15, eyes/ears/shoulders/elbows/wrists 0.20, hips 0.25;
  V > 10: 0.10 / 0.15 / 0.20
- miss: V <= 5: face 0.15, shoulders/ankles 0.20, others (elbows, wrists, hips, knees) 0.25;
  V <= 10: 0.10 / 0.13 / 0.15; V > 10: 0.02 / 0.05 / 0.10
- inversion: face 0.01, upper body 0.03, lower body 0.06
- swap: if (V <= 10 and O > 0) or (V <= 15 and O >= 3): face 0.02, upper 0.15, lower 0.10;
  else 0.01 / 0.06 / 0.03
- good: the rest.

The synthesis (:mod:`posefix_bench.synthesis.synthesize`) drops a class whose region is empty for a keypoint
(no symmetric partner, nobody nearby) and renormalises the others, as the paper does.

Other keypoint schemas: a joint whose name is a COCO-17 name takes that joint's row; any other joint takes the
mean row of the COCO-17 joints of its body-part group when the schema's group is named ``face``, ``upper`` or
``lower`` (e.g. CrowdPose's ``top_head`` and ``neck`` are in ``face``), else the mean row of all 17 joints. The V
and O thresholds are kept as published (they are not rescaled to the schema's number of keypoints), as the
measured profiles' bins (``codecs.taxonomy.V_BINS``) are.

Mixes (all defined over the paper table; C = 5 classes in :data:`ERROR_TYPES` order):

=================  =================================================================================
``paper``          the table above
``none``           every keypoint good (within d(0.85) of its joint; not the exact ground truth)
``jitter``         the paper's total error probability (1 - good) of each keypoint, all of it jitter;
``inversion``      likewise inversion; where the type's region is empty the keypoint stays good
``swap``           likewise swap (only people with an overlapping neighbour get errors)
``miss``           likewise miss
``no-swap``        paper with swap probability 0 (its mass goes to good)
``no-inversion``   paper with inversion probability 0
``jitter-only``    paper with inversion, swap and miss probabilities 0: only the paper's jitter rates
``miss-heavy``     paper with the miss probability doubled
=================  =================================================================================

A mix can also be given as a dict (e.g. in an ablation config), applied in this order::

    {"base": "paper" | <mix name> | <error-profile .json>,  # required
     "only": "swap",                 # optional: the base's whole error mass (1 - good) on one type
     "scale": {"swap": 2.0},         # optional: multiply error types; good takes the rest; if the errors
                                     #   then sum to more than 1 they are rescaled to sum to 1 (good = 0)
     "min_count": 20,                # optional, profile bases only: back-off threshold (ErrorProfile)
     "name": "my-mix"}               # optional: the name reports and cache keys use

or as the path of a measured error profile (``posefix-bench profile``; :class:`ErrorProfile`), whose per
(V bin, O bin, joint) class probabilities replace the paper table; its keypoints must be the schema's, and a profile
with no support (zero counted keypoints, e.g. measured on zero persons) is refused.

Shape legend: N persons, K keypoints, C = 5 classes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from posefix_bench.codecs.taxonomy import ERROR_TYPES, GOOD, o_bin, v_bin
from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import COCO17, KeypointSchema
from posefix_bench.synthesis.error_profile import ErrorProfile

__all__ = ["ErrorMix", "get_mix", "NAMED_MIXES", "paper_rows", "PAPER_COLUMNS"]

ERRORS = ERROR_TYPES[1:]  # jitter, inversion, swap, miss

# -- the paper table (PoseFix Sec. 4) ------------------------------------------------------------------------------
PAPER_COLUMNS = (
    "jitter_V<=10", "jitter_V>10", "miss_V<=5", "miss_V<=10", "miss_V>10", "inversion", "swap_crowded", "swap",
)  # fmt: skip
_FACE = (0.15, 0.10, 0.02)  # miss by V bin for face joints
_PAPER_LEFT = {  # one row per joint; right_* joints equal their left_* partners
    #                 jitter        miss     inv    swap
    "nose":          (0.15, 0.10) + _FACE + (0.01, 0.02, 0.01),
    "left_eye":      (0.20, 0.15) + _FACE + (0.01, 0.02, 0.01),
    "left_ear":      (0.20, 0.15) + _FACE + (0.01, 0.02, 0.01),
    "left_shoulder": (0.20, 0.15, 0.20, 0.13, 0.05, 0.03, 0.15, 0.06),
    "left_elbow":    (0.20, 0.15, 0.25, 0.15, 0.10, 0.03, 0.15, 0.06),
    "left_wrist":    (0.20, 0.15, 0.25, 0.15, 0.10, 0.03, 0.15, 0.06),
    "left_hip":      (0.25, 0.20, 0.25, 0.15, 0.10, 0.06, 0.10, 0.03),
    "left_knee":     (0.15, 0.10, 0.25, 0.15, 0.10, 0.06, 0.10, 0.03),
    "left_ankle":    (0.15, 0.10, 0.20, 0.13, 0.05, 0.06, 0.10, 0.03),
}  # fmt: skip
_PAPER = {**_PAPER_LEFT, **{"right_" + n[5:]: r for n, r in _PAPER_LEFT.items() if n.startswith("left_")}}
assert set(_PAPER) == set(COCO17.keypoints)


def paper_rows(schema: KeypointSchema) -> np.ndarray:
    """(K, 8) the paper-table row of every keypoint of ``schema`` (columns :data:`PAPER_COLUMNS`).

    COCO-17 names take their row; other joints the mean row of their COCO-17 body-part group (``face``, ``upper``,
    ``lower``) when the schema's group has that name, else the mean of all rows.
    """
    coco = np.asarray([_PAPER[n] for n in COCO17.keypoints], dtype=np.float64)
    group_of = {}
    for g, idx in schema.groups.items():
        for i in idx:
            group_of.setdefault(i, g)
    rows = np.empty((schema.num_keypoints, len(PAPER_COLUMNS)))
    for k, name in enumerate(schema.keypoints):
        if name in _PAPER:
            rows[k] = _PAPER[name]
        elif group_of.get(k) in COCO17.groups:
            rows[k] = coco[list(COCO17.groups[group_of[k]])].mean(axis=0)
        else:
            rows[k] = coco.mean(axis=0)
    return rows


def _paper_probabilities(rows: np.ndarray, v: np.ndarray, o: np.ndarray) -> np.ndarray:
    """(K, 8) rows, (N,) V and O -> (N, K, C) probabilities of the paper table."""
    v, o = v[:, None], o[:, None]
    jitter = np.where(v <= 10, rows[:, 0], rows[:, 1])
    miss = np.where(v <= 5, rows[:, 2], np.where(v <= 10, rows[:, 3], rows[:, 4]))
    inversion = np.broadcast_to(rows[:, 5], jitter.shape)
    crowded = ((v <= 10) & (o > 0)) | ((v <= 15) & (o >= 3))
    swap = np.where(crowded, rows[:, 6], rows[:, 7])
    errors = np.stack([jitter, inversion, swap, miss], axis=-1)
    return np.concatenate([1.0 - errors.sum(axis=-1, keepdims=True), errors], axis=-1)


# -- named mixes ---------------------------------------------------------------------------------------------------
NAMED_MIXES: Mapping[str, dict] = {
    "paper": {"base": "paper"},
    "none": {"base": "paper", "scale": {e: 0.0 for e in ERRORS}},
    **{e: {"base": "paper", "only": e} for e in ERRORS},
    "no-swap": {"base": "paper", "scale": {"swap": 0.0}},
    "no-inversion": {"base": "paper", "scale": {"inversion": 0.0}},
    "jitter-only": {"base": "paper", "scale": {"inversion": 0.0, "swap": 0.0, "miss": 0.0}},
    "miss-heavy": {"base": "paper", "scale": {"miss": 2.0}},
}


@dataclass(frozen=True, eq=False)
class ErrorMix:
    """Class probabilities of every keypoint given its person's V and O, for one keypoint schema.

    Attributes:
        name: stable identifier for reports and cache keys (a profile base includes a hash of its counts).
        schema: the keypoint schema the probabilities are laid out for.
        base: ``"paper"`` or ``"profile"``.
        ops: the ``("only", type)`` / ``("scale", ((type, factor), ...))`` steps applied to the base, in order.
        table: (K, 8) paper rows, or (VB, OB, K, C) profile probabilities.
        source: where the base came from (``"paper"`` or the profile path).
        digest: for a profile base, a hash of its counts and back-off threshold (what the mix depends on).

    Two mixes are the same when their :meth:`spec` is (``==`` compares identity).
    """

    name: str
    schema: KeypointSchema
    base: str
    ops: tuple
    table: np.ndarray
    source: str = "paper"
    digest: str = ""

    def probabilities(self, v: np.ndarray, o: np.ndarray) -> np.ndarray:
        """(N,) labelled-keypoint counts V and (N,) overlap counts O -> (N, K, C) probabilities over ERROR_TYPES."""
        v = np.asarray(v).reshape(-1)
        o = np.asarray(o).reshape(-1)
        if v.shape != o.shape:
            raise PosefixError(f"error mix {self.name}: V has {v.size} persons but O has {o.size}")
        if self.base == "paper":
            p = _paper_probabilities(self.table, v, o)
        else:
            p = self.table[v_bin(v), o_bin(o)]
        for op, arg in self.ops:
            p = _only(p, arg) if op == "only" else _scale(p, dict(arg))
        return p

    def spec(self) -> dict:
        """The canonical JSON-able definition (base, source, steps): what a cache key should hash."""
        out: dict[str, Any] = {"name": self.name, "schema": self.schema.name, "base": self.base}
        if self.base == "profile":
            out["profile"], out["profile_digest"] = self.source, self.digest
        out["ops"] = [[op, arg if op == "only" else dict(arg)] for op, arg in self.ops]
        return out

    def describe(self) -> str:
        """One line for reports, e.g. ``paper (PoseFix Sec. 4); scale swap x2``."""
        base = "paper table (PoseFix Sec. 4)" if self.base == "paper" else f"measured profile {self.source}"
        steps = [
            f"all errors as {arg}" if op == "only" else "scale " + ", ".join(f"{t} x{f:g}" for t, f in arg)
            for op, arg in self.ops
        ]
        return f"{self.name}: " + "; ".join([base] + steps)


def _only(p: np.ndarray, error_type: str) -> np.ndarray:
    out = np.zeros_like(p)
    out[..., GOOD] = p[..., GOOD]
    out[..., ERROR_TYPES.index(error_type)] = 1.0 - p[..., GOOD]
    return out


def _scale(p: np.ndarray, factors: dict) -> np.ndarray:
    errors = p[..., 1:] * np.asarray([factors.get(e, 1.0) for e in ERRORS])
    total = errors.sum(axis=-1, keepdims=True)
    errors = np.where(total > 1.0, errors / np.maximum(total, 1e-300), errors)
    return np.concatenate([1.0 - errors.sum(axis=-1, keepdims=True), errors], axis=-1)


# -- the factory ---------------------------------------------------------------------------------------------------
def get_mix(spec: str | os.PathLike | Mapping | ErrorMix, schema: KeypointSchema) -> ErrorMix:
    """An :class:`ErrorMix` from a name, a dict (see the module docstring), an error-profile path, or a JSON
    object string (``'{"base": "paper", "scale": {"swap": 2}}'``, for the command line)."""
    if isinstance(spec, ErrorMix):
        if spec.schema.keypoints != schema.keypoints:
            raise PosefixError(f"error mix {spec.name} is for schema {spec.schema.name}, not {schema.name}")
        return spec
    if isinstance(spec, Mapping):
        return _from_dict(spec, schema, name=None)
    if isinstance(spec, os.PathLike):
        return _from_profile(Path(spec), schema, min_count=None)
    if not isinstance(spec, str):
        raise PosefixError(f"error mix: expected a name, a dict or a profile path, got {type(spec).__name__}")
    if spec in NAMED_MIXES:
        return _from_dict(NAMED_MIXES[spec], schema, name=spec)
    if spec.lstrip().startswith("{"):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as e:
            raise PosefixError(f"error mix {spec!r}: not valid JSON ({e.msg})") from None
        return get_mix(data, schema)
    if spec.endswith(".json") or Path(spec).is_file():
        return _from_profile(Path(spec), schema, min_count=None)
    raise PosefixError(
        f"unknown error mix {spec!r} (known: {', '.join(NAMED_MIXES)}; or an error-profile .json, or a JSON object)"
    )


_DICT_KEYS = ("base", "only", "scale", "min_count", "name")


def _from_dict(d: Mapping, schema: KeypointSchema, name: str | None) -> ErrorMix:
    where = f"error mix {name or dict(d)!r}"
    unknown = sorted(set(d) - set(_DICT_KEYS))
    if unknown:
        raise PosefixError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(_DICT_KEYS)})")
    base = d.get("base")
    if not isinstance(base, (str, os.PathLike)) or not str(base):
        raise PosefixError(f"{where}: 'base' must be 'paper', a mix name or an error-profile path")
    min_count = d.get("min_count")
    if base == "paper":
        if min_count is not None:
            raise PosefixError(f"{where}: 'min_count' applies to error-profile bases only")
        parent = ErrorMix("paper", schema, "paper", (), paper_rows(schema))
    elif isinstance(base, str) and base in NAMED_MIXES:
        if min_count is not None:
            raise PosefixError(f"{where}: 'min_count' applies to error-profile bases only")
        parent = _from_dict(NAMED_MIXES[base], schema, name=base)
    else:
        parent = _from_profile(Path(base), schema, min_count)
    ops = list(parent.ops)
    if d.get("only") is not None:
        if d["only"] not in ERRORS:
            raise PosefixError(f"{where}: 'only' must be one of {', '.join(ERRORS)}, got {d['only']!r}")
        ops.append(("only", d["only"]))
    if d.get("scale"):
        ops.append(("scale", _check_scale(d["scale"], where)))
    label = d.get("name") or name or _auto_name(parent.name, ops[len(parent.ops):])
    return ErrorMix(str(label), schema, parent.base, tuple(ops), parent.table, parent.source, parent.digest)


def _check_scale(scale, where: str) -> tuple:
    if not isinstance(scale, Mapping):
        raise PosefixError(f"{where}: 'scale' must map error types to factors")
    out = []
    for t in ERRORS:  # canonical order
        if t in scale:
            f = scale[t]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not np.isfinite(f) or f < 0:
                raise PosefixError(f"{where}: scale factor for {t} must be a finite number >= 0, got {f!r}")
            out.append((t, float(f)))
    bad = sorted(set(scale) - set(ERRORS))
    if bad:
        raise PosefixError(f"{where}: cannot scale {bad[0]!r} (error types: {', '.join(ERRORS)})")
    return tuple(out)


def _auto_name(parent: str, ops: list) -> str:
    parts = [parent]
    for op, arg in ops:
        parts.append(f"only={arg}" if op == "only" else ",".join(f"{t}*{f:g}" for t, f in arg))
    return "+".join(parts)


def _from_profile(path: Path, schema: KeypointSchema, min_count: int | None) -> ErrorMix:
    profile = ErrorProfile.load(path)
    if profile.keypoints != schema.keypoints:
        raise PosefixError(
            f"{path}: error profile is for the {profile.num_keypoints} keypoints of schema {profile.schema!r}, "
            f"not those of {schema.name!r}"
        )
    if int(profile.counts.sum()) == 0:  # the back-off would make every keypoint "good": perfect poses
        raise PosefixError(f"{path}: error profile has no support (no matched keypoint was counted): as a mix it "
                           "would synthesise perfect poses")
    if min_count is None:
        probs = profile.probabilities()
    elif isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise PosefixError(f"{path}: 'min_count' must be a positive integer, got {min_count!r}")
    else:
        probs = profile.probabilities(min_count)
    digest = hashlib.sha256(json.dumps([profile.counts.tolist(), min_count]).encode()).hexdigest()[:12]
    name = f"profile:{path.stem}@{digest}"
    return ErrorMix(name, schema, "profile", (), probs, str(path), digest)
