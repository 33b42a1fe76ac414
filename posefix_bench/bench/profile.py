"""Bench profiles: which data, which upstream sources, which ablations, how many seeds.

A profile is a folder ``ablations/<profile>/`` holding

- ``_profile_.py``: an mmengine config with one ``profile`` dict (data, sources, seeds, refinement and FPS
  settings, the comparisons the index draws, and the refinement ``methods`` compared on every source,
  :mod:`posefix_bench.bench.method_steps`);
- one refiner config per ablation (every ``*.py`` not starting with ``_``), each a ``_base_`` plus the few lines it
  changes, its file name saying which factors it sets (``r18_64x48_paper_lb-off_skip.py``). An ablation may
  carry a ``bench = dict(seeds=[0, 1], tags=[...], trains_on='sandbox')`` section that the trainer ignores
  (``trains_on``: an ablation of a profile over real data that trains on generated scenes must say so).

The ``profile`` dict is checked against a typed schema when it loads (:mod:`posefix_bench.bench.profile_schema`:
an unknown key is an error naming the nearest known one), and across sections (:func:`check_profile`).

Each config is parsed once, here (mmengine resolves its ``_base_`` chain); the bench's steps use the parsed dict
(:attr:`Ablation.config`) and the factors it sets (:func:`ablation_factors`), never the file name.

Profiles (issue 9): ``quick`` (generated sandbox scenes, small backbones and inputs, minutes per variant on
2 cores), ``coco-mini`` (the real images of ``../shared/data/coco-mini`` or any COCO root: the real-image path
check), ``coco`` (a full COCO root, the published schedule, GPUs, torchrun).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posefix_bench.bench.data_spec import check_data_spec
from posefix_bench.bench.profile_schema import SECTIONS, check_sections, unknown_key_error
from posefix_bench.errors import PosefixError, file_error
from posefix_bench.evaluation.bootstrap import check_bootstrap

__all__ = ["Ablation", "Profile", "ABLATIONS_DIR", "load_profile", "check_profile", "train_split_problem",
           "import_custom_modules", "custom_code_hash", "list_profiles", "ablation_factors",
           "measured_source", "describe"]

BENCH_KEYS = ("seeds", "tags", "trains_on")  # an ablation's ``bench`` section
TRAINS_ON = ("sandbox", "profile")
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
    trains_on: str | None = None  # bench.trains_on: 'sandbox' where it trains on generated scenes on purpose

    @property
    def measured_source(self) -> str | None:
        """The source whose measured error profile is this ablation's mix (``data.mix = "measured:<source>"``)."""
        return measured_source(self.config.get("data", {}).get("mix"))


@dataclass(frozen=True)
class Profile:
    """A bench profile (see the module docstring). ``sections`` holds every section of the ``profile`` dict as the
    schema checked it (:mod:`posefix_bench.bench.profile_schema`, defaults filled in); read them with
    :meth:`section`."""

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
    sections: dict = field(default_factory=dict)
    methods: tuple[dict, ...] = ()  # refinement methods run on every source (bench.method_steps)

    def ablation(self, name: str) -> Ablation:
        for a in self.ablations:
            if a.name == name:
                return a
        raise PosefixError(f"profile {self.name}: no ablation {name!r}")

    def section(self, name: str) -> Any:
        """A section of the profile (its schema default where the profile leaves it out); only the sections the
        schema knows (:data:`~posefix_bench.bench.profile_schema.SECTIONS`) can be asked for."""
        if name not in SECTIONS:
            raise KeyError(f"profile section {name!r} is not in the schema (posefix_bench/bench/profile_schema.py)")
        return copy.deepcopy(self.sections[name] if name in self.sections else SECTIONS[name].default)


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
    sections = check_sections(spec_file, raw)
    import_custom_modules(spec_file, sections["custom_imports"])  # before the ablations: they may name a backbone
    default_seeds = tuple(int(s) for s in sections["seeds"])
    ablations = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if only and not any(fnmatch.fnmatch(path.stem, pat) for pat in only):
            continue
        config = _read_config(path)
        bench = config.pop("bench", None) or {}
        for key in bench:
            if key not in BENCH_KEYS:
                raise unknown_key_error(path, key, BENCH_KEYS, "bench")
        seeds = tuple(int(s) for s in bench.get("seeds", default_seeds))
        if not seeds:
            raise file_error(path, "bench.seeds is empty")
        ablations.append(Ablation(path.stem, path, seeds, tuple(bench.get("tags", ())), config,
                                  bench.get("trains_on")))
    if not ablations:
        raise PosefixError(f"{folder}: no ablation configs" + (f" matching {only}" if only else ""))
    from posefix_bench.bench.method_steps import check_methods  # (the methods registry: after custom_imports)

    every = [p.stem for p in folder.glob("*.py") if not p.name.startswith("_")]
    methods = check_methods(sections["methods"], every, sections.get("default_ablation"), spec_file,
                            sections["sources"])
    profile = Profile(
        name=str(sections.get("name", folder.name)),
        folder=folder,
        description=str(sections["description"]),
        data=dict(sections["data"]),
        sources=tuple(dict(s) for s in sections["sources"]),
        ablations=tuple(ablations),
        refine=dict(sections["refine"]),
        fps=dict(sections["fps"]),
        comparisons=tuple(dict(c) for c in sections["comparisons"]),
        default_ablation=sections.get("default_ablation"),
        sections=sections,
        methods=methods,
    )
    check_profile(profile, spec_file)
    return profile


def check_profile(profile: Profile, spec_file: Path) -> None:
    """The checks across sections, before any work: the data section's form; source names unique; the sources
    ``learning_curve``, ``gate`` and ``occluded_split`` name exist; the bootstrap settings; the sources that must
    predict on the training split (``gate.sources``, ``measured:`` mixes) can; every ablation trains on the profile's
    data or says where else (``bench.trains_on``)."""
    check_data_spec(profile.data, spec_file)
    names = [s["name"] for s in profile.sources]
    if len(set(names)) != len(names):
        raise file_error(spec_file, "every source needs a unique 'name'")
    for section in ("learning_curve", "gate"):  # sources a section names: checked before any work
        named = profile.section(section).get("sources")
        if named is not None and (not named or any(n not in names for n in named)):
            raise file_error(spec_file, f"{section}.sources {list(named)} must name sources of the profile "
                                        f"({', '.join(names)})")
    try:  # the paired bootstrap's settings (evaluation.bootstrap): checked before any work
        check_bootstrap(profile.section("bootstrap"))
    except PosefixError as e:
        raise file_error(spec_file, str(e)) from None
    split = profile.section("occluded_split")
    if split and any(n not in names for n in split.get("sources") or ()):
        raise file_error(spec_file, f"occluded_split.sources {list(split['sources'])} must name sources of the "
                                    f"profile ({', '.join(names)})")
    need_train = {n: "gate.sources" for n in profile.section("gate").get("sources") or ()}
    for a in profile.ablations:
        if a.measured_source is not None:
            if a.measured_source not in names:
                raise file_error(a.path, f"data.mix 'measured:{a.measured_source}' names no source of the profile "
                                         f"({', '.join(names)})")
            need_train.setdefault(a.measured_source, f"the measured mix of {a.name}")
    for name, why in need_train.items():
        spec = next(s for s in profile.sources if s["name"] == name)
        reason = train_split_problem(spec)
        if reason:
            raise file_error(spec_file, f"source {name!r} is used on the training split ({why}) but {reason}")
    sandbox_data = profile.data.get("kind") == "sandbox"
    for a in profile.ablations:
        trains_on = "sandbox" if (a.config.get("data") or {}).get("sandbox") else "profile"
        if a.trains_on is not None and a.trains_on not in TRAINS_ON:
            raise file_error(a.path, f"bench.trains_on {a.trains_on!r}: expected one of {', '.join(TRAINS_ON)}")
        if a.trains_on is not None and a.trains_on != trains_on:
            raise file_error(a.path, f"bench.trains_on={a.trains_on!r} but the config trains on "
                                     + ("generated sandbox scenes (data.sandbox)" if trains_on == "sandbox"
                                        else "the profile's data (no data.sandbox)"))
        if trains_on == "sandbox" and not sandbox_data and a.trains_on is None:
            raise file_error(a.path, "trains on generated sandbox scenes (data.sandbox, inherited from its _base_?) "
                                     "while the profile evaluates on other data: set data=dict(sandbox=None) to "
                                     "train on the profile's data, or bench=dict(trains_on='sandbox') to say so")


def import_custom_modules(spec_file: Path, custom: dict) -> list[str]:
    """Import the user modules a profile's ``custom_imports=dict(imports=['my_pkg.my_module'])`` names (mmengine's
    ``custom_imports``; importable from ``sys.path``: PYTHONPATH or an installed package), so that the methods,
    sources and backbones they register (:mod:`posefix_bench.registry`) can be named in the profile and its
    ablations. With ``allow_failed_imports=True`` a module that fails to import is skipped; otherwise the failure
    is a one-line error. Returns the names imported (their code enters the steps' keys: :func:`custom_code_hash`)."""
    import importlib

    names = custom.get("imports") or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise file_error(spec_file, f"custom_imports.imports must be a list of module names, not {names!r}")
    done = []
    for name in names:
        try:
            importlib.import_module(name)
        except PosefixError as e:
            raise file_error(spec_file, f"custom_imports: {name}: {e}") from None
        except Exception as e:  # ImportError, or any error the user's module raises
            if custom.get("allow_failed_imports"):
                continue
            raise file_error(spec_file, f"custom_imports: cannot import {name!r} ({type(e).__name__}: {e})") from None
        done.append(name)
    return done


def custom_code_hash(custom: dict) -> str | None:
    """SHA-256 over the source files of the imported user modules (a package: every ``.py`` file under it), so a
    change of the user's code reruns the steps, as a change of the package's own code does; None without any."""
    import hashlib
    import sys

    h, found = hashlib.sha256(), False
    for name in sorted(custom.get("imports") or []):
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if not origin:
            continue
        origin = Path(origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f"{name}:{f.name}".encode())
            h.update(f.read_bytes())
            found = True
    return h.hexdigest() if found else None


def train_split_problem(spec: dict) -> str | None:
    """Why a profile source cannot predict on the training split (None: it can). A ``results-file`` source holds
    the estimator's results on one split only, unless it also names its training-split results (``train_path``)."""
    if spec.get("type") == "results-file" and not spec.get("train_path"):
        return ("a results-file source has validation results only: give its training-split results as "
                "train_path=...")
    return None


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
