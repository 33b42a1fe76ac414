"""List the upstream sources: mmpose estimators from the cards in ``estimators/``, mediapipe, results-file, synthetic.

For each: its kind, family, network input size, weights, whether it is trained, and the COCO val AP its authors
published with the detector they measured it with (mmpose model zoo). ``--json`` prints the same as JSON records.
"""

from __future__ import annotations

import argparse

HELP = "list the upstream sources (estimators, mediapipe, results files, synthesis) with their metadata"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON records instead of a table")


def _weights(info) -> str:
    if not info.weights:
        return "-" if info.kind in ("results-file", "synthetic") else "none (trained here)"
    return info.weights.rsplit("/", 1)[-1]


def run(args: argparse.Namespace) -> int:
    import json

    from posefix_bench.reporting.tables import text_table
    from posefix_bench.sources import list_sources

    infos = list_sources()
    if args.json:
        print(json.dumps([i.to_record() for i in infos], indent=2))
        return 0
    rows = []
    for i in infos:
        pub = i.published or {}
        size = f"{i.input_size[1]}x{i.input_size[0]}" if i.input_size else "-"
        rows.append([i.name, i.kind, i.family or "-", size, _weights(i), i.trained, pub.get("AP")])
    print(text_table(["source", "kind", "family", "input (HxW)", "weights", "trained", "published AP"], rows))
    detectors = sorted({(i.published or {}).get("detector") for i in infos} - {None})
    for d in detectors:
        print(f"published AP: COCO val2017, {d}")
    return 0
