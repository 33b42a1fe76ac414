"""Bench profiles: which data, which upstream sources, which ablations, how many seeds.

A profile is a folder ``ablations/<profile>/`` holding

- ``_profile_.py``: an mmengine config with one ``profile`` dict (data, sources, seeds, refinement and FPS
  settings, the comparisons the index draws, and the refinement ``methods`` compared on every source,
  :mod:`posefix_bench.bench.method_steps`);
- one refiner config per ablation (every ``*.py`` not starting with ``_``), each a ``_base_`` plus the few lines it
  changes, its file name saying which factors it sets (``r18_64x48_paper_lb-off_skip.py``). An ablation may
  carry a ``bench = dict(seeds=[0, 1], tags=[...])`` section that the trainer ignores.

Each config is parsed once, here (mmengine resolves its ``_base_`` chain); the bench's steps use the parsed dict
(:attr:`Ablation.config`) and the factors it sets (:func:`ablation_factors`), never the file name.

Profiles (issue 9): ``quick`` (generated sandbox scenes, small backbones and inputs, minutes per variant on
2 cores), ``coco-mini`` (the real images of ``../shared/data/coco-mini`` or any COCO root: the real-image path
check), ``coco`` (a full COCO root, the published schedule, GPUs, torchrun).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posefix_bench.errors import PosefixError, file_error

__all__ = ["Ablation", "Profile", "ABLATIONS_DIR", "load_profile", "list_profiles", "ablation_factors",
           "measured_source", "describe"]

ABLATIONS_DIR = Path(os.environ.get("POSEFIX_ABLATIONS", Path(__file__).resolve().parents[2] / "ablations"))


@dataclass(frozen=True, eq=False)
class Ablation:
    """One refiner configuration of a profile: its parsed config (without the ``bench`` section), the seeds it is
    trained with and the comparisons (tags) it takes part in."""

    name: str
    path: Path
    seeds: tuple[int, ...]
    tags: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)

    @property
    def measured_source(self) -> str | None:
        """The source whose measured error profile is this ablation's mix (``data.mix = "measured:<source>"``)."""
        return measured_source(self.config.get("data", {}).get("mix"))


@dataclass(frozen=True)
class Profile:
    """A bench profile (see the module docstring)."""

    name: str
    folder: Path
    description: str
    data: dict
    sources: tuple[dict, ...]
    ablations: tuple[Ablation, ...]
    refine: dict = field(default_factory=dict)
    fps: dict = field(default_factory=dict)
    comparisons: tuple[dict, ...] = ()
    default_ablation: str | None = None
    raw: dict = field(default_factory=dict)
    methods: tuple[dict, ...] = ()  # refinement methods run on every source (bench.method_steps)

    def ablation(self, name: str) -> Ablation:
        for a in self.ablations:
            if a.name == name:
                return a
        raise PosefixError(f"profile {self.name}: no ablation {name!r}")


def list_profiles() -> list[str]:
    return sorted(p.name for p in ABLATIONS_DIR.iterdir() if (p / "_profile_.py").is_file())


def _read_config(path: Path) -> dict:
    from posefix_bench.engine.train_config import load_config

    return load_config(path).to_dict()


def load_profile(name_or_folder: str | os.PathLike, only: list[str] | None = None) -> Profile:
    """Read a profile by name (a folder of ``ablations/``) or by folder path.

    Args:
        name_or_folder: ``quick``, ``coco-mini``, ``coco`` or a folder holding a ``_profile_.py``.
        only: restrict to these ablation names (glob patterns allowed).
    """
    import fnmatch

    folder = Path(name_or_folder)
    if not (folder / "_profile_.py").is_file():
        folder = ABLATIONS_DIR / str(name_or_folder)
    spec_file = folder / "_profile_.py"
    if not spec_file.is_file():
        known = ", ".join(list_profiles()) or "none"
        raise PosefixError(f"unknown bench profile {str(name_or_folder)!r} (known: {known})")
    raw = _read_config(spec_file).get("profile")
    if not isinstance(raw, dict):
        raise file_error(spec_file, "no 'profile' dict")
    for key in ("data", "sources"):
        if key not in raw:
            raise file_error(spec_file, f"profile lacks '{key}'")
    default_seeds = tuple(int(s) for s in raw.get("seeds", (0,)))
    ablations = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if only and not any(fnmatch.fnmatch(path.stem, pat) for pat in only):
            continue
        config = _read_config(path)
        bench = config.pop("bench", None) or {}
        seeds = tuple(int(s) for s in bench.get("seeds", default_seeds))
        if not seeds:
            raise file_error(path, "bench.seeds is empty")
        ablations.append(Ablation(path.stem, path, seeds, tuple(bench.get("tags", ())), config))
    if not ablations:
        raise PosefixError(f"{folder}: no ablation configs" + (f" matching {only}" if only else ""))
    names = [s.get("name") for s in raw["sources"]]
    if len(set(names)) != len(names) or not all(names):
        raise file_error(spec_file, "every source needs a unique 'name'")
    for section in ("learning_curve", "gate"):  # sources a section names: checked before any work
        named = (raw.get(section) or {}).get("sources")
        if named is not None and (not named or any(n not in names for n in named)):
            raise file_error(spec_file, f"{section}.sources {list(named)} must name sources of the profile "
                                        f"({', '.join(names)})")
    from posefix_bench.bench.method_steps import check_methods

    every = [p.stem for p in folder.glob("*.py") if not p.name.startswith("_")]
    methods = check_methods(raw.get("methods"), every, raw.get("default_ablation"), spec_file, raw["sources"])
    return Profile(
        name=str(raw.get("name", folder.name)),
        folder=folder,
        description=str(raw.get("description", "")),
        data=dict(raw["data"]),
        sources=tuple(dict(s) for s in raw["sources"]),
        ablations=tuple(ablations),
        refine=dict(raw.get("refine", {})),
        fps=dict(raw.get("fps", {})),
        comparisons=tuple(dict(c) for c in raw.get("comparisons", ())),
        default_ablation=raw.get("default_ablation"),
        raw=raw,
        methods=methods,
    )


def measured_source(mix: Any) -> str | None:
    """``"measured:<source>"`` -> ``<source>``; None for any other mix."""
    return mix.split(":", 1)[1] if isinstance(mix, str) and mix.startswith("measured:") else None


def ablation_factors(config: dict) -> dict:
    """The factors an ablation's config sets, as reports name them: backbone, input (H x W), head, mix (a measured
    profile as ``measured (<source>)``), lower body (on when ``data.lower_body.p`` > 0), training iterations."""
    model, data, train = config.get("model") or {}, config.get("data") or {}, config.get("train") or {}
    size = model.get("input_size")
    mix = data.get("mix", "paper")
    source = measured_source(mix)
    lower_p = float((data.get("lower_body") or {}).get("p", 0.0))
    return {"backbone": str(model.get("backbone", "-")), "input": f"{size[1]}x{size[0]}" if size else "-",
            "head": str(model.get("head", "-")), "mix": f"measured ({source})" if source else describe(mix),
            "lower body": "on" if lower_p > 0 else "off", "iterations": _schedule(train)}


def _schedule(train: dict) -> int | str:
    """Training length as reports name it: iterations, or ``<n> epochs`` for an epoch-based schedule."""
    if train.get("max_iters"):
        return int(train["max_iters"])
    return f"{train['epochs']} epochs" if train.get("epochs") else "-"


def describe(value: Any) -> str:
    """Short text for a config value in reports."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)
