"""Layer 0: the package's one registry mechanism: mmengine's ``Registry`` and a strict name lookup.

Every kind of named, pluggable part (refiner backbones and heads, :mod:`posefix_bench.models`; upstream sources,
:mod:`posefix_bench.sources.registry`) is an mmengine ``Registry`` made by :func:`new_registry`, which refuses a name
registered twice (``register_module(name=..., module=factory)``; ``force=True`` replaces). Each kind has one
``build_*`` function that looks the name up with :func:`lookup`: only names registered in that registry (not
mmengine's scoped ``scope.name`` keys or import-path fallbacks), an unknown one a one-line
:class:`~posefix_bench.errors.PosefixError` listing the known names; :func:`check_options` refuses an option a
factory does not take (one line, not a ``TypeError`` from deep inside a constructor).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

from mmengine.registry import Registry

from posefix_bench.errors import PosefixError

__all__ = ["new_registry", "lookup", "unknown_name", "check_options"]


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


def check_options(what: str, name: str, target: Callable, options: dict, skip: Iterable[str] = ("self",)) -> None:
    """Every key of ``options`` is a keyword ``target`` takes (any, when it takes ``**kwargs``); else a one-line
    ``<what> 'name': unknown option 'x' (options: a, b)``. Parameters named in ``skip`` are not offered."""
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    known = [p.name for p in params if p.kind in kinds and p.name not in set(skip)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise PosefixError(f"{what} {name!r}: unknown option {unknown[0]!r} (options: {', '.join(known) or 'none'})")
