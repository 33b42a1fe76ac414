"""An external refiner for posefix-bench: a template to replace with your own model.

It reads a COCO keypoint results file and writes one, one record per input record in the same order; posefix-bench
keeps every other field of each input record, keeps keypoints the input did not predict (confidence 0) absent, and
checks the output is one to one. Two ways in, both used in README.md ("Benchmark your own refiner"):

- as a program (method type ``command``): ``{python} examples/my_refiner.py {input} {output}``;
- as a Python callable (method type ``python``): ``my_refiner:refine`` with ``examples/`` on ``PYTHONPATH``.

What it does, as a stand-in for a model: it pulls each predicted keypoint a fraction ``PULL`` of the way towards the
confidence-weighted mean of its pose's predicted keypoints, more for low-confidence keypoints (a crude shape prior:
an unsure keypoint far from the body is more often wrong than right). It needs only the standard library.
"""

from __future__ import annotations

import json
import sys

PULL = 0.1  # the largest fraction of the way to the pose's centre (for a keypoint with confidence 0+)


def refine_pose(keypoints: list[float]) -> list[float]:
    """One pose ``[x1, y1, c1, ..., xK, yK, cK]`` refined (absent keypoints, confidence 0, left as they are)."""
    pts = [keypoints[i:i + 3] for i in range(0, len(keypoints), 3)]
    weight = sum(c for _, _, c in pts if c > 0)
    if weight <= 0:
        return list(keypoints)
    cx = sum(x * c for x, _, c in pts if c > 0) / weight
    cy = sum(y * c for _, y, c in pts if c > 0) / weight
    out = []
    for x, y, c in pts:
        pull = PULL * (1.0 - min(max(c, 0.0), 1.0)) if c > 0 else 0.0
        out += [x + pull * (cx - x), y + pull * (cy - y), c]
    return out


def refine(results: list[dict], images, gt) -> list[dict]:
    """The ``python`` method's entry point: results in, refined results out (``images``, ``gt``: unused here)."""
    return [dict(r, keypoints=refine_pose(r["keypoints"])) for r in results]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python my_refiner.py INPUT.json OUTPUT.json")
    with open(sys.argv[1]) as f:
        records = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump(refine(records, None, None), f)
