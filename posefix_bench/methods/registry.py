"""The registry of refinement methods: one builder, :func:`build_method`, over :data:`METHODS`.

:data:`METHODS` is an mmengine ``Registry`` made by :func:`posefix_bench.registry.new_registry` (the same mechanism
as sources, backbones and heads). Built in: ``posefix``, ``re-estimate``, ``pose-prior``, ``identity``, ``command``,
``python`` (:mod:`posefix_bench.methods.posefix`, :mod:`~posefix_bench.methods.re_estimate`,
:mod:`~posefix_bench.methods.pose_prior`, :mod:`~posefix_bench.methods.simple`). Installed packages add
:class:`~posefix_bench.methods.base.Method` subclasses under the entry-point group ``posefix_bench.methods``
(``[project.entry-points."posefix_bench.methods"] my-refiner = "my_pkg.refiner:MyRefiner"``), discovered each time
the registry is asked, so a pip install is all it takes; code registers with :func:`register_method`. A name
registered in code wins over an entry point's; an entry point may not take a built-in's name.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Mapping

from posefix_bench.errors import PosefixError
from posefix_bench.methods.base import Method, MethodInfo
from posefix_bench.registry import check_options, new_registry, unknown_name

__all__ = ["METHODS", "ENTRY_POINT_GROUP", "register_method", "unregister_method", "build_method", "method_types",
           "list_methods"]

ENTRY_POINT_GROUP = "posefix_bench.methods"
METHODS = new_registry("refinement method")  # the methods registered in code: built-ins and register_method's
_BUILTINS: dict[str, type] = {}


def _ensure_builtins() -> None:
    if _BUILTINS:
        return
    from posefix_bench.methods.pose_prior import PosePriorMethod
    from posefix_bench.methods.posefix import PosefixMethod
    from posefix_bench.methods.re_estimate import ReEstimateMethod
    from posefix_bench.methods.simple import CommandMethod, IdentityMethod, PythonMethod

    for cls in (PosefixMethod, ReEstimateMethod, PosePriorMethod, IdentityMethod, CommandMethod, PythonMethod):
        METHODS.register_module(name=cls.info.type, module=cls)
        _BUILTINS[cls.info.type] = cls


def _check_class(cls, where: str) -> type:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise PosefixError(f"{where}: not a posefix_bench.methods.Method subclass")
    return cls


def register_method(name: str, cls: type, replace: bool = False) -> None:
    """Add a method class (a :class:`Method` subclass) under ``name``; a name taken is refused unless ``replace``."""
    if not name or not isinstance(name, str):
        raise PosefixError(f"method name must be a non-empty string, got {name!r}")
    _check_class(cls, f"method {name!r}")
    _ensure_builtins()
    if name in METHODS.module_dict and not replace:
        raise PosefixError(f"method {name!r} is already registered")
    METHODS.register_module(name=name, module=cls, force=replace)


def unregister_method(name: str) -> None:
    """Remove a method added with :func:`register_method` (a replaced built-in comes back); no-op when absent."""
    _ensure_builtins()
    if name in _BUILTINS:
        METHODS.register_module(name=name, module=_BUILTINS[name], force=True)
    else:
        METHODS.module_dict.pop(name, None)  # mmengine's Registry has no removal; module_dict is its live table


def _plugins() -> dict[str, tuple[type, str]]:
    """``{name: (class, "module:attr")}`` of the installed entry points (loaded; a broken one is a one-line error)."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP})"
        if ep.name in _BUILTINS:
            raise PosefixError(f"{where}: {ep.name!r} is a built-in method name")
        try:
            cls = ep.load()
        except Exception as e:  # noqa: BLE001 - any import failure of a plug-in is reported as one line
            raise PosefixError(f"{where}: cannot be loaded ({type(e).__name__}: {e})") from None
        found[ep.name] = (_check_class(cls, where), ep.value)
    return found


def _all_classes() -> dict[str, tuple[type, str]]:
    """Built-ins, then entry points, then classes registered in code: ``{name: (class, origin)}``."""
    _ensure_builtins()
    table = {name: (cls, "built-in") for name, cls in _BUILTINS.items()}
    table.update(_plugins())
    for name, cls in METHODS.module_dict.items():
        if name not in _BUILTINS or cls is not _BUILTINS[name]:
            table[name] = (cls, f"{cls.__module__}.{cls.__qualname__}")
    return table


def method_types() -> list[str]:
    return list(_all_classes())


def list_methods() -> list[MethodInfo]:
    """Every method's info (its type as registered, where it comes from)."""
    out = []
    for name, (cls, origin) in _all_classes().items():
        info = cls.info
        out.append(MethodInfo(type=name, description=info.description, uses_images=info.uses_images,
                              learned=info.learned, origin=origin, extra=dict(info.extra)))
    return out


def build_method(spec: str | Mapping, **options) -> Method:
    """Build a method: ``build_method("command", command="...")`` or ``build_method(dict(type="command", name="mine",
    command="..."))`` (a profile's ``methods`` entry). An unknown type or option is a one-line error."""
    if isinstance(spec, Mapping):
        options = {**{k: v for k, v in spec.items() if k != "type"}, **options}
        if "type" not in spec:
            raise PosefixError(f"method {spec.get('name', spec)!r}: no 'type' (known: {', '.join(method_types())})")
        spec = spec["type"]
    _ensure_builtins()
    cls = METHODS.module_dict.get(spec) if isinstance(spec, str) else None
    if cls is None:
        table = _all_classes()
        if spec not in table:
            raise unknown_name("refinement method", spec, table)
        cls = table[spec][0]
    check_options("method", options.get("name") or spec, cls.__init__, options)
    return cls(**options)
