"""The typed schema of a bench profile's ``profile = dict(...)``: every known section, its type, its default and the
keys it may hold, checked when the profile loads (issue 28).

As detectron2's strict config merge (``CfgNode.merge_from_other_cfg`` refuses a key the defaults lack), a key the
schema does not know is an error, not silently dropped: ``default_ablaton`` fails at load with one line naming the
key, the file and the nearest known key (:func:`difflib.get_close_matches`). The bench reads every section through
:meth:`posefix_bench.bench.profile.Profile.section`, which only knows the sections listed here.

Adding a section is one line in :data:`SECTIONS`: ``name: Section(type, default, keys=(...))``.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass
from typing import Any, Mapping

from posefix_bench.errors import PosefixError, file_error

__all__ = ["Section", "SECTIONS", "DATA_KEYS", "check_sections", "unknown_key_error"]


@dataclass(frozen=True)
class Section:
    """One profile section.

    Attributes:
        type: its Python type (``dict``, ``list``, ``str``, ``int``).
        default: its value when the profile leaves it out (None: absent).
        keys: for a dict, the keys it may hold (None: any); for a list of dicts, the keys each item may hold.
        required: the profile must set it.
        item_required: for a list of dicts, the keys every item must set.
    """

    type: type
    default: Any = None
    keys: tuple[str, ...] | None = None
    required: bool = False
    item_required: tuple[str, ...] = ()


# the data section: a generated sandbox, a named COCO root (the ``kind`` forms), or an mmpose-style dataset spec
# (``type='coco'`` with annotation files and image folders in any layout; posefix_bench.bench.data_spec)
DATA_KEYS = ("kind", "params", "train_split", "val_split", "type", "ann_file", "img_dir", "val_ann_file",
             "val_img_dir")

SECTIONS: dict[str, Section] = {
    "name": Section(str),
    "description": Section(str, ""),
    "data": Section(dict, required=True, keys=DATA_KEYS),
    "sources": Section(list, required=True, item_required=("name", "type")),
    "seeds": Section(list, [0]),
    "default_ablation": Section(str),
    "comparisons": Section(list, [], keys=("name", "tag", "question", "subset", "speed"),
                           item_required=("name", "tag")),
    "learning_curve": Section(dict, {}, keys=("tags", "seeds", "sources")),
    "gate": Section(dict, {}, keys=("calibrate_on", "sources", "mixes", "draws", "seed", "keep", "tolerance", "l2")),
    "free_baselines": Section(dict, {}, keys=("methods", "timing")),
    "refine": Section(dict, {}, keys=("batch_size", "precision", "flip", "box", "absent_policy")),
    "fps": Section(dict, {}, keys=("batches", "precisions", "threads")),
    "budget": Section(dict, keys=("minutes", "reference_gflops")),
    "profile_train_images": Section(int),
    "train_launcher": Section(dict),
    "slurm": Section(dict, {}),
    "custom_imports": Section(dict, {}, keys=("imports", "allow_failed_imports")),
    "methods": Section(list, [], item_required=("name", "type")),  # issue 26: refinement methods
    "bootstrap": Section(dict, {}, keys=("resamples", "seed")),  # the paired bootstrap (evaluation.bootstrap)
    "occluded_split": Section(dict, keys=("images", "seed", "sources")),  # bench.occluded: lower-body-occluded val
}


def unknown_key_error(path: str | os.PathLike, key: str, known, where: str = "profile") -> PosefixError:
    """One line: the unknown key, the file, and the nearest known key (or the known keys when none is near)."""
    near = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(known))}"
    return file_error(path, f"unknown key {key!r} in {where} ({hint})")


def _check_keys(path, value: Mapping, keys, where: str) -> None:
    for key in value:
        if key not in keys:
            raise unknown_key_error(path, key, keys, where)


def check_sections(path: str | os.PathLike, raw: Mapping) -> dict:
    """The profile dict ``raw`` (from file ``path``) checked against :data:`SECTIONS`: every key known, every
    section of its type, dict sections holding known keys only, list-of-dict items with their required keys; the
    defaults filled in. Returns a new dict (the sections the profile leaves out and that have no default are absent).
    """
    _check_keys(path, raw, SECTIONS, "profile")
    out = {}
    for name, sec in SECTIONS.items():
        if name not in raw or raw[name] is None:
            if sec.required:
                raise file_error(path, f"profile lacks '{name}'")
            if sec.default is not None:
                out[name] = copy.deepcopy(sec.default)
            continue
        value = raw[name]
        if sec.type is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, sec.type) or (sec.type is int and isinstance(value, bool)):
            raise file_error(path, f"profile.{name} must be a {sec.type.__name__}, not {type(value).__name__}")
        if sec.type is dict and sec.keys is not None:
            _check_keys(path, value, sec.keys, f"profile.{name}")
        if sec.type is list:
            for i, item in enumerate(value):
                if sec.item_required or sec.keys is not None:
                    if not isinstance(item, Mapping):
                        raise file_error(path, f"profile.{name}[{i}] must be a dict, not {type(item).__name__}")
                    if sec.keys is not None:
                        _check_keys(path, item, sec.keys, f"profile.{name}[{i}]")
                    missing = [k for k in sec.item_required if not item.get(k)]
                    if missing:
                        raise file_error(path, f"profile.{name}[{i}] lacks '{missing[0]}'")
        out[name] = copy.deepcopy(value)
    return out
