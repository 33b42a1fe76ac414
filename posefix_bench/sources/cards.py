"""Estimator cards: one small mmengine config per upstream mmpose estimator, kept in ``estimators/``.

A card is an mmengine config file whose ``_base_`` is the estimator's official mmpose config, shipped inside the
mmpose wheel (``mmpose::body_2d_keypoint/...``; mmengine resolves the ``mmpose::`` scope to
``mmpose/.mim/configs``), plus a ``card`` dict of metadata::

    _base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']
    card = dict(
        name='simplebaseline-r50-256x192', family='SimpleBaseline', description='...',
        mmpose_config='body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py',
        input_size=(192, 256),                    # (width, height), as mmpose's codecs write it
        checkpoint='https://download.openmmlab.com/...pth',   # None: trained here (sandbox cards)
        trained_on='COCO train2017',
        published=dict(AP=..., AP50=..., detector='...', source='https://github.com/open-mmlab/mmpose/...md'))

A zoo card adds nothing else, so the model is exactly the published one; a sandbox card (``estimators/sandbox/``)
overrides the base like any mmengine config (smaller input, shallower backbone, a short schedule) and is trained
here by :func:`posefix_bench.sources.mmpose_train.train_mmpose_estimator`.

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
]

ESTIMATORS_ENV = "POSEFIX_ESTIMATORS"
MMPOSE_SCOPE = "mmpose::"
_REQUIRED = ("name", "family", "mmpose_config", "input_size")
_cache: dict[Path, tuple[int, "EstimatorCard"]] = {}


@dataclass(frozen=True)
class EstimatorCard:
    """A parsed card.

    Attributes:
        name: registry name of the source.
        path: the card file.
        family: model family (SimpleBaseline, HRNet, RTMPose, ...).
        mmpose_config: the official config it derives from, relative to mmpose's configs folder.
        input_size: (width, height) of the network input.
        checkpoint: published checkpoint URL or path; None when the weights are trained here.
        trained_on: what the published / sandbox weights were trained on.
        published: published accuracy with its detector and source page; None for sandbox cards.
        description: one line.
        config: the full mmengine ``Config`` (base merged with the card's overrides).
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
    """The card's ``_base_`` entries, read without executing it."""
    for node in _parse(path).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                base = ast.literal_eval(node.value)
            except ValueError:
                raise file_error(path, "_base_ must be a literal string or list of strings") from None
            return [base] if isinstance(base, str) else list(base)
    return []


def _check_base(path: Path, mmpose_config: str) -> None:
    bases = _base_files(path)
    wanted = MMPOSE_SCOPE + mmpose_config
    if wanted not in bases:
        raise file_error(path, f"_base_ must include {wanted!r} (the card's mmpose_config); it is {bases}")
    for base in bases:
        if base.startswith(MMPOSE_SCOPE):
            target = mmpose_configs_dir() / base[len(MMPOSE_SCOPE):]
            if not target.is_file():
                raise file_error(path, f"mmpose config {base[len(MMPOSE_SCOPE):]!r} not found in the installed "
                                       f"mmpose (looked for {target})")
        elif not (path.parent / base).is_file():
            raise file_error(path, f"_base_ config {base!r} not found")


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
    """Parse and check a card (cached until the file changes).

    Raises a one-line :class:`PosefixError` for a missing file, a missing ``card`` dict or key, an mmpose config that
    the installed wheel does not ship, or an ``input_size`` that disagrees with the config's test pipeline.
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise file_error(p, "estimator card not found")
    mtime = p.stat().st_mtime_ns
    hit = _cache.get(p)
    if hit is not None and hit[0] == mtime:
        return hit[1]
    meta = _card_dict(p)
    _check_base(p, str(meta["mmpose_config"]))
    cfg = _read_config(p)
    input_size = tuple(int(v) for v in meta["input_size"])
    pipe_size = _pipeline_input_size(cfg)
    if pipe_size is None:
        raise file_error(p, "the config's test pipeline has no TopdownAffine step (not a top-down estimator)")
    if pipe_size != input_size:
        raise file_error(p, f"card input_size {input_size} differs from the test pipeline's {pipe_size}")
    card = EstimatorCard(
        name=str(meta["name"]),
        path=p,
        family=str(meta["family"]),
        mmpose_config=str(meta["mmpose_config"]),
        input_size=input_size,
        checkpoint=meta.get("checkpoint"),
        trained_on=str(meta.get("trained_on", "")),
        published=dict(meta["published"]) if meta.get("published") else None,
        description=str(meta.get("description", "")),
        config=cfg,
    )
    _cache[p] = (mtime, card)
    return card


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
