"""Layer 5: refinement methods (the mirror image of :mod:`posefix_bench.sources`: sources make poses, methods
transform them): posefix, identity, an external command, a Python callable and installed plug-ins, behind one
interface (:class:`Method`: results in, refined results out, one to one) and one builder (:func:`build_method`)."""

from posefix_bench.methods.base import Method, MethodInfo, check_one_to_one, merge_refined
from posefix_bench.methods.registry import (
    ENTRY_POINT_GROUP,
    METHODS,
    build_method,
    list_methods,
    method_types,
    register_method,
    unregister_method,
)

__all__ = [
    "Method", "MethodInfo", "check_one_to_one", "merge_refined",
    "ENTRY_POINT_GROUP", "METHODS", "build_method", "list_methods", "method_types", "register_method",
    "unregister_method",
]
