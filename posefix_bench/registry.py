"""Layer 0: the package's one registry mechanism: mmengine's ``Registry`` and a strict name lookup.

Every kind of named, pluggable part (refiner backbones and heads, :mod:`posefix_bench.models`; upstream sources,
:mod:`posefix_bench.sources.registry`) is an mmengine ``Registry`` made by :func:`new_registry`, which refuses a name
registered twice (``register_module(name=..., module=factory)``; ``force=True`` replaces). Each kind has one
``build_*`` function that looks the name up with :func:`lookup`: only names registered in that registry (not
mmengine's scoped ``scope.name`` keys or import-path fallbacks), an unknown one a one-line
:class:`~posefix_bench.errors.PosefixError` listing the known names.
"""

from __future__ import annotations

from typing import Any, Iterable

from mmengine.registry import Registry

from posefix_bench.errors import PosefixError

__all__ = ["new_registry", "lookup", "unknown_name"]


def new_registry(what: str) -> Registry:
    """An empty registry of ``what`` (e.g. ``"refiner backbone"``; the word in its error messages)."""
    return Registry(what, scope="posefix_bench")


def unknown_name(what: str, name: Any, known: Iterable[str]) -> PosefixError:
    """``unknown <what> 'name' (known: a, b, c)``."""
    return PosefixError(f"unknown {what} {name!r} (known: {', '.join(known)})")


def lookup(registry: Registry, name: Any) -> Any:
    """What ``name`` is registered as in ``registry``; an unknown name is a one-line error naming the known ones."""
    found = registry.module_dict.get(name) if isinstance(name, str) else None
    if found is None:
        raise unknown_name(registry.name, name, registry.module_dict)
    return found
