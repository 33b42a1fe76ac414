"""Estimator cards: one small mmengine config per upstream mmpose estimator, kept in ``estimators/``.

A card is an mmengine config file whose ``_base_`` leads to the estimator's official mmpose config, shipped inside
the mmpose wheel (``mmpose::body_2d_keypoint/...``; mmengine resolves the ``mmpose::`` scope to
``mmpose/.mim/configs``), directly or through a shared local base (``_base_ = ['./_sandbox_.py']``), plus a ``card``
dict of metadata::

    _base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']
    card = dict(name='simplebaseline-r50-256x192', family='SimpleBaseline', trained_on='COCO train2017',
                description='...')

Each fact is written once: the official config (:attr:`EstimatorCard.mmpose_config`) is the one ``mmpose::`` entry
the ``_base_`` chain leads to, and the input size is the test pipeline's ``TopdownAffine`` size (a card may still
state ``mmpose_config`` / ``input_size``; they are checked against the config). A *zoo card* assigns nothing but
``_base_`` and ``card``, so its model is exactly the published one: its checkpoint URL and published accuracy are
read from the model index that mmpose ships beside the config (the wheel's ``*.yml`` metafile whose ``Models`` entry
names that config: ``Weights`` and the COCO ``Results``, :func:`metafile_entry`); a card may state ``checkpoint`` /
``published`` itself (a model the metafiles do not list), and then they are taken as written. A sandbox card
(``estimators/sandbox/``) overrides the base like any mmengine config (smaller input, shallower backbone, a short
schedule), has no published weights and is trained here by
:func:`posefix_bench.sources.mmpose_train.train_mmpose_estimator`; it may add ``ladder=(...)``: the training
iterations at which :func:`posefix_bench.sources.mmpose_train.train_mmpose_ladder` saves its weights (estimators of
one family at several strengths). Files whose names start with ``_`` are shared bases, not cards.

The folder is ``$POSEFIX_ESTIMATORS`` if set, else ``estimators/`` at the repository root.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from posefix_bench.errors import PosefixError, file_error

__all__ = [
    "ESTIMATORS_ENV",
    "EstimatorCard",
    "estimators_dir",
    "mmpose_configs_dir",
    "load_card",
    "discover_cards",
    "metafile_entry",
    "MMPOSE_COCO_DETECTOR",
]

ESTIMATORS_ENV = "POSEFIX_ESTIMATORS"
MMPOSE_SCOPE = "mmpose::"
_REQUIRED = ("name", "family")
_ZOO_ASSIGNMENTS = {"_base_", "card"}  # all a zoo card assigns: the model is exactly the official one
# mmpose's COCO top-down results (README tables and metafiles) are measured on val2017 with the boxes of this detector
MMPOSE_COCO_DETECTOR = ("person detector with human AP 56.4 on COCO val2017 "
                        "(COCO_val2017_detections_AP_H_56_person.json)")
MMPOSE_REPO = "https://github.com/open-mmlab/mmpose/blob/main/configs/"
_METRICS = {"AP": "AP", "AP@0.5": "AP50", "AP@0.75": "AP75", "AR": "AR", "AR@0.5": "AR50"}  # metafile -> card
_cache: dict[Path, tuple[tuple, "EstimatorCard"]] = {}


@dataclass(frozen=True)
class EstimatorCard:
    """A parsed card.

    Attributes:
        name: registry name of the source.
        path: the card file.
        family: model family (SimpleBaseline, HRNet, RTMPose, ...).
        mmpose_config: the official config it derives from, relative to mmpose's configs folder.
        input_size: (width, height) of the network input.
        checkpoint: published checkpoint URL or path (the card's, else the mmpose metafile's for a zoo card);
            None when the weights are trained here.
        trained_on: what the published / sandbox weights were trained on.
        published: published accuracy with its dataset, detector, source page and the metafile it was read from
            (the card's own ``published`` if it states one); None for sandbox cards.
        description: one line.
        config: the full mmengine ``Config`` (base merged with the card's overrides).
        ladder: training iterations to save weights at for an input-strength ladder; () if none.
    """

    name: str
    path: Path
    family: str
    mmpose_config: str
    input_size: tuple[int, int]
    checkpoint: str | None
    trained_on: str
    published: Mapping | None
    description: str
    config: Any = field(repr=False, compare=False)
    ladder: tuple[int, ...] = ()

    @property
    def is_sandbox(self) -> bool:
        """True when no published checkpoint exists: the weights come from training here."""
        return self.checkpoint is None


def estimators_dir() -> Path:
    """``$POSEFIX_ESTIMATORS``, else ``estimators/`` at the repository root."""
    env = os.environ.get(ESTIMATORS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "estimators"


def mmpose_configs_dir() -> Path:
    """The configs shipped in the installed mmpose wheel (``mmpose/.mim/configs``), found without importing it."""
    spec = importlib.util.find_spec("mmpose")
    if spec is None or not spec.submodule_search_locations:
        raise PosefixError("mmpose is not installed (estimator cards need its configs)")
    return Path(list(spec.submodule_search_locations)[0]) / ".mim" / "configs"


def _parse(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as e:
        raise file_error(path, f"not a valid Python config (line {e.lineno}: {e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise file_error(path, f"cannot be read ({e})") from None


def _base_files(path: Path) -> list[str]:
    """The config's ``_base_`` entries, read without executing it."""
    for node in _parse(path).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                base = ast.literal_eval(node.value)
            except ValueError:
                raise file_error(path, "_base_ must be a literal string or list of strings") from None
            return [base] if isinstance(base, str) else list(base)
    return []


def _mmpose_bases(path: Path, card: Path, seen: tuple[Path, ...] = ()) -> list[str]:
    """The ``mmpose::`` configs a card derives from, following its local ``_base_`` files (e.g. a shared
    ``_sandbox_*.py``) recursively; each is checked to exist."""
    found: list[str] = []
    for base in _base_files(path):
        if base.startswith(MMPOSE_SCOPE):
            target = mmpose_configs_dir() / base[len(MMPOSE_SCOPE):]
            if not target.is_file():
                raise file_error(card, f"mmpose config {base[len(MMPOSE_SCOPE):]!r} not found in the installed "
                                       f"mmpose (looked for {target})")
            found.append(base[len(MMPOSE_SCOPE):])
            continue
        local = (path.parent / base).resolve()
        if not local.is_file():
            raise file_error(card, f"_base_ config {base!r} not found")
        if local in seen:
            raise file_error(card, f"_base_ configs include each other ({local.name})")
        found += _mmpose_bases(local, card, (*seen, local))
    return found


def _mmpose_config(path: Path, meta: Mapping) -> str:
    """The one official mmpose config under the card's ``_base_`` chain (named once, there)."""
    found = sorted(set(_mmpose_bases(path, path)))
    if len(found) != 1:
        raise file_error(path, f"_base_ must lead to exactly one {MMPOSE_SCOPE} config (the estimator's official "
                               f"mmpose config); it leads to {found or 'none'}")
    given = meta.get("mmpose_config")
    if given is not None and given != found[0]:
        raise file_error(path, f"card mmpose_config {given!r} is not the {MMPOSE_SCOPE} config its _base_ leads to "
                               f"({found[0]!r}; leave mmpose_config out)")
    return found[0]


def _pipeline_input_size(cfg) -> tuple[int, int] | None:
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        return None
    for step in pipeline:
        if step.get("type") == "TopdownAffine":
            return tuple(int(v) for v in step["input_size"])
    return None


def _read_config(path: Path):
    with warnings.catch_warnings():  # mmengine imports pkg_resources, which warns on every package it resolves
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        return _parse_config(path)


def _parse_config(path: Path):
    from mmengine.config import Config

    try:
        return Config.fromfile(str(path))
    except (PosefixError, KeyboardInterrupt):
        raise
    except Exception as e:  # mmengine raises many types for a bad config; report one line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise file_error(path, f"cannot be read as an mmengine config ({type(e).__name__}: {msg})") from None


def load_card(path: str | os.PathLike) -> EstimatorCard:
    """Parse and check a card (cached until the file or one of its local ``_base_`` files changes).

    Raises a one-line :class:`PosefixError` for a missing file, a missing ``card`` dict or key, an mmpose config that
    the installed wheel does not ship, or an ``input_size`` that disagrees with the config's test pipeline.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise file_error(p, "estimator card not found")
    mtime = _stamp(p)
    hit = _cache.get(p)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    meta = _card_dict(p)
    mmpose_config = _mmpose_config(p, meta)
    cfg = _read_config(p)
    pipe_size = _pipeline_input_size(cfg)
    if pipe_size is None:
        raise file_error(p, "the config's test pipeline has no TopdownAffine step (not a top-down estimator)")
    input_size = tuple(int(v) for v in meta.get("input_size", pipe_size))
    if pipe_size != input_size:
        raise file_error(p, f"card input_size {input_size} differs from the test pipeline's {pipe_size}")
    ladder = _ladder(p, meta.get("ladder", ()), cfg)
    checkpoint, published = meta.get("checkpoint"), dict(meta["published"]) if meta.get("published") else None
    if _assigned_names(p) <= _ZOO_ASSIGNMENTS and (checkpoint is None or published is None):
        found = metafile_entry(mmpose_config)
        if found is None and checkpoint is None:
            raise file_error(p, f"no mmpose metafile lists {mmpose_config!r}: state the card's checkpoint "
                                f"(and published accuracy) in the card")
        if found is not None:
            checkpoint = checkpoint or found[1].get("Weights")
            published = published or _published(*found)
    card = EstimatorCard(
        name=str(meta["name"]),
        path=p,
        family=str(meta["family"]),
        mmpose_config=mmpose_config,
        input_size=input_size,
        checkpoint=checkpoint,
        trained_on=str(meta.get("trained_on", "")),
        published=published,
        description=str(meta.get("description", "")),
        config=cfg,
        ladder=ladder,
    )
    _cache[p] = (mtime, card)
    return card


def _ladder(path: Path, ladder, cfg) -> tuple[int, ...]:
    """The card's ``ladder``: training iterations to save weights at (increasing, within ``train_cfg.max_iters``)."""
    if not ladder:
        return ()
    if not isinstance(ladder, (list, tuple)) or not all(isinstance(i, int) and i >= 1 for i in ladder) \
            or list(ladder) != sorted(set(ladder)):
        raise file_error(path, f"card ladder must be increasing iterations >= 1, got {ladder!r}")
    train_cfg = cfg.get("train_cfg") or {}
    if train_cfg.get("by_epoch", True) or ladder[-1] > int(train_cfg.get("max_iters", 0)):
        raise file_error(path, f"card ladder {list(ladder)} needs an iteration-based schedule reaching "
                               f"{ladder[-1]} iterations (train_cfg by_epoch=False, max_iters)")
    return tuple(ladder)


def _assigned_names(path: Path) -> set[str]:
    """The names a config file and its local ``_base_`` files assign at their top level (read without executing
    them; the ``mmpose::`` base is the official config and not counted)."""
    names = set()
    for base in _base_files(path):
        if not base.startswith(MMPOSE_SCOPE):
            names |= _assigned_names((path.parent / base).resolve()) - {"card"}
    for node in _parse(path).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
        if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr)):
            names.add(f"<{type(node).__name__}>")  # imports, functions, ...: not a plain zoo card
    return names


_metafiles: dict[str, tuple[Path, dict] | None] = {}


def metafile_entry(mmpose_config: str) -> tuple[Path, dict] | None:
    """(metafile, ``Models`` entry) of the model index shipped in the mmpose wheel beside ``mmpose_config``
    (relative to mmpose's configs folder), or None where no metafile lists that config."""
    if mmpose_config in _metafiles:
        return _metafiles[mmpose_config]
    import yaml

    folder = (mmpose_configs_dir() / mmpose_config).parent
    found = None
    for yml in sorted(folder.glob("*.yml")):
        text = yml.read_text(encoding="utf-8")
        if Path(mmpose_config).name not in text:  # parse only the metafiles that can list it
            continue
        try:
            models = (yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}).get("Models", [])
        except yaml.YAMLError as e:
            raise file_error(yml, f"mmpose metafile cannot be read ({type(e).__name__})") from None
        found = next(((yml, m) for m in models if str(m.get("Config", "")).endswith(mmpose_config)), None)
        if found:
            break
    _metafiles[mmpose_config] = found
    return found


def _published(yml: Path, entry: Mapping) -> dict | None:
    """A zoo card's ``published``: the metafile's COCO results, with the detector mmpose measured them with and the
    page of the table they come from (the ``.md`` beside the metafile in mmpose's repository)."""
    results = [r for r in entry.get("Results") or [] if r.get("Dataset") == "COCO"]
    if not results:
        return None
    rel = yml.relative_to(mmpose_configs_dir()).as_posix()
    metrics = {_METRICS[k]: float(v) for k, v in results[0].get("Metrics", {}).items() if k in _METRICS}
    return dict(metrics, dataset="COCO val2017", detector=MMPOSE_COCO_DETECTOR,
                source=MMPOSE_REPO + rel.removesuffix(".yml") + ".md", metafile=f"mmpose/.mim/configs/{rel}")


def _stamp(path: Path) -> tuple:
    """Modification times and sizes of a card and of the local ``_base_`` files it reads (a changed base reloads it)."""
    stamps, todo, seen = [], [path], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        st = f.stat()
        stamps.append((str(f), st.st_mtime_ns, st.st_size))
        try:
            bases = _base_files(f)
        except PosefixError:
            continue  # reported when the card is parsed
        todo += [(f.parent / b).resolve() for b in bases if not b.startswith(MMPOSE_SCOPE)]
    return tuple(sorted(stamps))


def _card_dict(path: Path) -> dict:
    """The literal ``card = dict(...)`` of a card file, read without executing it."""
    node = None
    for stmt in _parse(path).body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "card" for t in stmt.targets):
            node = stmt.value
    if node is None:
        raise file_error(path, "not an estimator card (no 'card = dict(...)')")
    try:
        meta = _literal(node)
    except ValueError:
        raise file_error(path, "the card dict must hold literal values only") from None
    if not isinstance(meta, dict):
        raise file_error(path, "'card' must be a dict")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise file_error(path, f"card lacks {', '.join(missing)}")
    return meta


def _literal(node: ast.AST):
    """``ast.literal_eval`` that also accepts ``dict(key=value, ...)`` calls, as mmengine configs write dicts."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(kw.arg is None for kw in node.keywords):
            raise ValueError("dict(**...) is not a literal")
        return {kw.arg: _literal(kw.value) for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        vals = [_literal(v) for v in node.elts]
        return vals if isinstance(node, ast.List) else tuple(vals)
    return ast.literal_eval(node)


def discover_cards(root: str | os.PathLike | None = None) -> dict[str, EstimatorCard]:
    """Every card under ``root`` (default :func:`estimators_dir`), recursively, by name (sorted by path)."""
    base = Path(root) if root is not None else estimators_dir()
    if not base.is_dir():
        raise file_error(base, f"estimator card folder not found (set {ESTIMATORS_ENV})")
    cards: dict[str, EstimatorCard] = {}
    for path in sorted(base.rglob("*.py")):
        if path.name.startswith("_"):
            continue
        card = load_card(path)
        if card.name in cards:
            raise file_error(path, f"card name {card.name!r} is also used by {cards[card.name].path}")
        cards[card.name] = card
    return cards
