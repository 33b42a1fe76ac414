"""Layer 5: upstream sources of input poses (mmpose estimators, mediapipe, results files, synthesis) behind one
interface and registry, person boxes, estimator cards, and training small mmpose estimators offline."""

from posefix_bench.sources.base import SOURCE_KINDS, UNTRAINED_KEY, Source, SourceInfo, mark_untrained
from posefix_bench.sources.boxes import BoxSet, load_boxes
from posefix_bench.sources.registry import get_source, list_sources, register_source, source_names, unregister_source

__all__ = [
    "SOURCE_KINDS", "UNTRAINED_KEY", "Source", "SourceInfo", "mark_untrained",
    "BoxSet", "load_boxes",
    "get_source", "list_sources", "register_source", "source_names", "unregister_source",
]
