"""The registry of upstream sources (timm-like: one builder, ``get_source``, over a table of factories).

The table is :data:`SOURCES`, an mmengine ``Registry`` (:mod:`posefix_bench.registry`, the same mechanism as the
refiner's backbones and heads). Built in: ``mediapipe`` (the pretrained BlazePose that ships inside the mediapipe
wheel), ``results-file`` (any estimator's COCO results JSON, PoseFix's original use), ``synthetic`` (Ronchi-Perona
synthesis from the ground truth); other layers add theirs with :func:`register_source` (e.g. the refiner's
``RefinedSource``). Besides those, one ``mmpose`` source per estimator card in ``estimators/``
(``$POSEFIX_ESTIMATORS``), discovered each time the registry is asked so that a new card needs no code; a name
registered in code wins over a card's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from posefix_bench.errors import PosefixError
from posefix_bench.registry import check_options, new_registry, unknown_name
from posefix_bench.sources.base import Source, SourceInfo
from posefix_bench.structures.schema import COCO17

__all__ = ["SOURCES", "register_source", "unregister_source", "get_source", "list_sources", "source_names"]


@dataclass(frozen=True)
class _Entry:
    """A registered source: its factory, its info (optional), what its options are checked against."""

    factory: Callable[..., Source]
    info: SourceInfo | None
    signature: Callable | None = None  # what the options are checked against (default: the factory)

    def __call__(self, **options) -> Source:
        return self.factory(**options)


# the sources registered in code: the built-ins (added on first use, see _ensure_builtins) and register_source's
SOURCES = new_registry("source")
_BUILTINS: dict[str, _Entry] = {}  # kept to restore a built-in that register_source(replace=True) shadowed


def register_source(name: str, factory: Callable[..., Source], info: SourceInfo | None = None,
                    replace: bool = False) -> None:
    """Add a source: ``factory(**options)`` builds it; ``info`` (optional) describes it without building it.

    A name already registered is refused (a one-line error) unless ``replace`` (which may also shadow a built-in
    until :func:`unregister_source`).
    """
    if not name or not isinstance(name, str):
        raise PosefixError(f"source name must be a non-empty string, got {name!r}")
    _ensure_builtins()
    if name in _BUILTINS and not replace:
        raise PosefixError(f"source {name!r} is built in; pass replace=True to shadow it")
    if name in SOURCES.module_dict and not replace:
        raise PosefixError(f"source {name!r} is already registered")
    SOURCES.register_module(name=name, module=_Entry(factory, info), force=replace)


def unregister_source(name: str) -> None:
    """Remove a source added with :func:`register_source` (a shadowed built-in comes back); no-op when absent."""
    _ensure_builtins()
    if name in _BUILTINS:
        SOURCES.register_module(name=name, module=_BUILTINS[name], force=True)
    else:
        SOURCES.module_dict.pop(name, None)  # mmengine's Registry has no removal; module_dict is its live table


def _ensure_builtins() -> None:
    """Register the built-in sources once (their modules are imported on first use, not with this one)."""
    if _BUILTINS:
        return
    from posefix_bench.sources.files import RESULTS_FILE_INFO, SYNTHETIC_INFO, ResultsFileSource, SyntheticSource
    from posefix_bench.sources.mediapipe_source import MEDIAPIPE_INFO, MediapipeSource

    builtins = {
        "mediapipe": _Entry(MediapipeSource, MEDIAPIPE_INFO),
        "results-file": _Entry(ResultsFileSource, RESULTS_FILE_INFO),
        "synthetic": _Entry(SyntheticSource, SYNTHETIC_INFO),
    }
    for name, entry in builtins.items():
        SOURCES.register_module(name=name, module=entry)
    _BUILTINS.update(builtins)


def _card_entries() -> dict[str, _Entry]:
    from posefix_bench.sources.cards import discover_cards

    return {name: _card_entry(card) for name, card in discover_cards().items()}


def _card_entry(card) -> _Entry:
    from posefix_bench.sources.mmpose_source import MmposeSource  # numpy only at import; mmpose when built

    info = SourceInfo(
        name=card.name, kind="mmpose", family=card.family, schema=COCO17.name, input_size=card.input_size,
        weights=card.checkpoint, trained=card.checkpoint is not None, published=card.published,
        description=card.description,
        extra={"mmpose_config": card.mmpose_config, "card": str(card.path), "trained_on": card.trained_on,
               **({"ladder": list(card.ladder)} if card.ladder else {})},
    )
    return _Entry(functools.partial(MmposeSource, card), info, MmposeSource)


def _all_entries() -> dict[str, _Entry]:
    """Built-ins, then cards, then sources registered in code (which win over a card or built-in of their name)."""
    _ensure_builtins()
    entries = dict(_BUILTINS)
    for name, entry in _card_entries().items():
        if name in entries:
            raise PosefixError(f"{entry.info.extra['card']}: card name {name!r} is a built-in source name")
        entries[name] = entry
    entries.update(SOURCES.module_dict)
    return entries


def source_names() -> list[str]:
    return list(_all_entries())


def get_source(name: str, **options) -> Source:
    """Build the source ``name`` with its options (e.g. ``checkpoint``, ``device``, ``batch_size``, ``untrained``,
    ``flip_test``, ``decode`` for mmpose cards; ``path`` for ``results-file``; ``mix``, ``seed`` for ``synthetic``).

    An unknown name raises a one-line :class:`PosefixError` listing the known ones.
    """
    _ensure_builtins()
    entry = SOURCES.module_dict.get(name) if isinstance(name, str) else None  # code-registered first, no card scan
    if entry is None:
        entries = _all_entries()
        entry = entries.get(name)
        if entry is None:
            raise unknown_name("source", name, entries)
    check_options("source", name, entry.signature or entry.factory, options, skip=("self", "card"))
    return entry.factory(**options)


def list_sources() -> list[SourceInfo]:
    """Every source's info (mmpose sources from their cards, without building the models)."""
    return [e.info if e.info is not None else e.factory().info for e in _all_entries().values()]
