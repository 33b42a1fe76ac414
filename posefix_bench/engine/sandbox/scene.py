"""One procedural sandbox image: a cluttered shop-like background, 1..N figures, counters and shelves, and the
COCO labels of every person (issue 8).

Composition. A horizon is drawn per image and every person's eyes sit near it (a camera at eye height), so
people nearer the camera are larger and stand lower in the frame; the largest ones are cut off by the bottom
edge (their ankles are then unlabelled, as in COCO). Heights are log-uniform between ``min_height`` and
``max_height`` times the image size. A third of the people are placed next to someone already there, so
overlaps (and with them swap errors) are common; a placement that would hide more than 60 % of another
person's box is redrawn. People are painted back to front (far to near). With probability ``occluder_p`` a
person gets a counter or a shelf just in front of them, whose top lies between their hips and knees: it hides
their lower body and that of anyone further back behind it; people nearer the camera can stand in front of it.

Labels, exactly as COCO defines them (computed from an owner map painted with the image, one id per shape):

- ``v = 2``: the joint's pixel shows one of the joint's own parts (``figure.JOINT_PARTS``);
- ``v = 1``: the joint is in the frame but hidden, by a counter or shelf, by another person in front, or by the
  person's own body (an arm across the torso, the far ear behind the head, a face turned to profile);
- ``v = 0``, coordinates (0, 0): outside the image, or the nose and eyes of a head seen from behind
  (``figure.FACE_LABELLED_Z``; COCO annotators label the ears of back views, rarely the face).
- ``bbox``: the tight box of the person's *visible* silhouette pixels (what a COCO annotator outlines), clipped to
  the image; pixel centres are at integer coordinates, so a pixel spans +-0.5 and the box contains every visible
  joint.
- ``area``: the pixel count of the person's *full* silhouette inside the frame, occluded parts included (an
  amodal area). COCO's area is the visible segmentation's; the full silhouette keeps the OKS scale s**2 of a
  person independent of what hides them, so an occluded person's tolerance is that of the same person
  unoccluded. The shoulder bag is not part of the silhouette.
- ``lower_body_occluded``: at least two lower-body joints (the schema's ``lower`` group) are hidden by a counter
  or shelf.

Shape legend: S image size, K keypoints, P polygon vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posefix_bench.engine.sandbox.figure import (
    BAG, EAR_VISIBLE_Z, FACE_LABELLED_Z, FACE_VISIBLE_Z, JOINT_PARTS, PARTS, Figure, ellipse, hsv_to_rgb,
    sample_figure,
)  # fmt: skip
from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import KeypointSchema

__all__ = ["Scene", "render_scene", "PERSON_ID_BASE"]

PERSON_ID_BASE = 1000  # owner-map id of person p's part q: PERSON_ID_BASE + 100 * p + q; occluder k: 1 + k
_SHIFT = 4  # fixed-point bits of the polygon coordinates given to OpenCV (1/16 px)
_MAX_OVERLAP = 0.6
# a person is annotated (and kept in the image) only if this much of their in-frame silhouette and this many
# joints are visible; others are removed and the scene repainted, so no unannotated fragment of a person remains
MIN_VISIBLE_FRACTION = 0.2
MIN_VISIBLE_JOINTS = 3


@dataclass
class Scene:
    """A rendered image and its labels.

    Attributes:
        image: (S, S, 3) uint8 RGB.
        persons: one record per annotated person: ``keypoints`` (K, 3) x, y, v; ``bbox`` [x, y, w, h]; ``area``;
            ``lower_body_occluded``; ``back_view``; ``draw_order`` (painting order shared with the occluders).
        occluders: ``polygon`` (P, 2) outline, ``kind`` (counter / shelf), ``draw_order``.
    """

    image: np.ndarray
    persons: list[dict]
    occluders: list[dict]


def _fix(poly: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(poly) * (1 << _SHIFT)).astype(np.int32)


def _fill(canvas: np.ndarray, poly: np.ndarray, value, aa: bool) -> None:
    import cv2

    cv2.fillPoly(canvas, [_fix(poly)], value, lineType=cv2.LINE_AA if aa else cv2.LINE_8, shift=_SHIFT)


def _rect(x0, y0, x1, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _muted(rng, v_lo=0.3, v_hi=0.9, s_hi=0.35) -> tuple[int, int, int]:
    return hsv_to_rgb(rng.random(), rng.uniform(0.03, s_hi), rng.uniform(v_lo, v_hi))


# -- background ----------------------------------------------------------------------------------------------
def _background(rng: np.random.Generator, size: int, horizon: float) -> np.ndarray:
    """(S, S, 3) uint8: wall, floor with perspective seams, and 3-9 pieces of shop clutter."""
    import cv2

    floor_y = int(horizon + rng.uniform(0.12, 0.3) * size)
    wall, floor = np.array(_muted(rng, 0.5, 0.92)), np.array(_muted(rng, 0.25, 0.7))
    ramp = np.linspace(1.08, 0.9, size)[:, None, None]
    img = np.empty((size, size, 3), np.float32)
    img[:] = wall
    img[floor_y:] = floor
    img *= ramp
    img = np.clip(img, 0, 255).astype(np.uint8)
    seam = tuple(int(c * 0.8) for c in floor)
    vx = rng.uniform(0.2, 0.8) * size
    for xb in np.linspace(-size, 2 * size, int(rng.integers(5, 11))):
        t = (floor_y - horizon) / max(size - horizon, 1.0)
        x_top = vx + (xb - vx) * t
        cv2.line(img, (int(x_top), floor_y), (int(xb), size), seam, 1, cv2.LINE_AA)
    cv2.line(img, (0, floor_y), (size, floor_y), tuple(int(c * 0.7) for c in wall), 2, cv2.LINE_AA)
    for _ in range(int(rng.integers(3, 10))):
        _clutter(rng, img, size, floor_y)
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray, size: int, floor_y: int) -> None:
    kind = rng.choice(["wall_shelf", "poster", "lamp", "plant", "pole", "box"])
    x, w = rng.uniform(-0.1, 1.0) * size, rng.uniform(0.08, 0.35) * size
    color = hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 0.95))
    if kind == "wall_shelf":
        y = rng.uniform(0.05, 0.9) * floor_y
        _fill(img, _rect(x, y, x + w, y + 0.02 * size), _muted(rng, 0.2, 0.6), True)
        bx = x
        while bx < x + w - 3:
            bw, bh = rng.uniform(0.015, 0.05) * size, rng.uniform(0.02, 0.07) * size
            c = hsv_to_rgb(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
            _fill(img, _rect(bx, y - bh, bx + bw, y), c, True)
            bx += bw + rng.uniform(0.0, 0.02) * size
    elif kind == "poster":
        y, h = rng.uniform(0.0, 0.7) * floor_y, rng.uniform(0.08, 0.3) * size
        _fill(img, _rect(x, y, x + w * 0.7, y + h), color, True)
        m = 0.15 * min(w * 0.7, h)
        _fill(img, _rect(x + m, y + m, x + w * 0.7 - m, y + h * 0.5), _muted(rng, 0.4, 1.0, 0.9), True)
    elif kind == "lamp":
        r = rng.uniform(0.02, 0.06) * size
        _fill(img, ellipse((x, rng.uniform(0.0, 0.5) * floor_y), r, r * 0.6), _muted(rng, 0.8, 1.0, 0.2), True)
    elif kind == "plant":
        base = np.array([x, rng.uniform(floor_y, size)])
        for _ in range(int(rng.integers(3, 7))):
            r = rng.uniform(0.02, 0.05) * size
            c = hsv_to_rgb(rng.uniform(0.22, 0.4), rng.uniform(0.4, 0.9), rng.uniform(0.25, 0.7))
            _fill(img, ellipse(base + rng.normal(0, 0.04 * size, 2) - [0, 0.06 * size], r, r * 1.3), c, True)
        _fill(img, _rect(base[0] - 0.03 * size, base[1] - 0.04 * size, base[0] + 0.03 * size, base[1]),
              _muted(rng, 0.2, 0.5, 0.6), True)
    elif kind == "pole":
        _fill(img, _rect(x, 0, x + rng.uniform(0.008, 0.025) * size, floor_y + rng.uniform(0, 0.2) * size),
              _muted(rng, 0.2, 0.8, 0.2), True)
    else:
        y1 = rng.uniform(floor_y, size)
        h = rng.uniform(0.05, 0.15) * size
        _fill(img, _rect(x, y1 - h, x + w * 0.5, y1), color, True)


# -- occluders -------------------------------------------------------------------------------------------------
def _occluder(rng: np.random.Generator, fig: Figure, height: float, size: int) -> dict:
    """A counter or a shelf in front of ``fig`` (placed), its top between the hips and the knees."""
    legs = np.stack([fig.joints[f"{s}_{j}"] for s in ("left", "right") for j in ("hip", "knee", "ankle")])
    hip_y = 0.5 * (fig.joints["left_hip"][1] + fig.joints["right_hip"][1])
    knee_y = 0.5 * (fig.joints["left_knee"][1] + fig.joints["right_knee"][1])
    top = hip_y + rng.uniform(-0.15, 0.6) * max(knee_y - hip_y, 0.05 * height)
    bottom = max(fig.extent()[3] + rng.uniform(0.03, 0.2) * height, top + 0.25 * height)
    pad = 0.07 * height
    x0 = legs[:, 0].min() - pad - rng.uniform(0.1, 0.6) * height
    x1 = legs[:, 0].max() + pad + rng.uniform(0.1, 0.6) * height
    if rng.random() < 0.3:
        x0, x1 = (-5.0, x1) if rng.random() < 0.5 else (x0, size + 5.0)
    kind = "counter" if rng.random() < 0.6 else "shelf"
    lip, over = rng.uniform(0.02, 0.05) * height, rng.uniform(0.0, 0.03) * height
    outline = np.array([[x0 - over, top], [x1 + over, top], [x1 + over, top + lip], [x1, top + lip],
                        [x1, bottom], [x0, bottom], [x0, top + lip], [x0 - over, top + lip]])
    body = _muted(rng, 0.25, 0.85, 0.45)
    decor = [(outline, body), (_rect(x0 - over, top, x1 + over, top + lip), _dim(body, 0.7))]
    decor += _decor(rng, kind, (x0, top + lip, x1, bottom), body, height)
    return {"polygon": outline, "kind": kind, "decor": decor}


def _dim(color, f: float) -> tuple[int, int, int]:
    return tuple(int(c * f) for c in color)


def _decor(rng: np.random.Generator, kind: str, box, body, height: float) -> list:
    """Front panel details inside ``box`` (x0, y0, x1, y1): counter planks, or shelf boards with products."""
    x0, y0, x1, y1 = box
    out = []
    if kind == "counter":
        for xs in np.arange(x0 + rng.uniform(0.1, 0.3) * height, x1, rng.uniform(0.15, 0.4) * height):
            out.append((_rect(xs, y0, xs + max(1.0, 0.008 * height), y1), _dim(body, 0.8)))
        return out
    out.append((_rect(x0 + 0.02 * height, y0, x1 - 0.02 * height, y1), _dim(body, 0.55)))
    for yb in np.arange(y0 + rng.uniform(0.12, 0.2) * height, y1, rng.uniform(0.12, 0.2) * height):
        bx = x0 + 0.03 * height
        while bx < x1 - 0.05 * height:
            bw, bh = rng.uniform(0.03, 0.08) * height, rng.uniform(0.05, 0.1) * height
            c = hsv_to_rgb(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0))
            out.append((_rect(bx, yb - bh, bx + bw, yb), c))
            bx += bw + rng.uniform(0.005, 0.03) * height
        out.append((_rect(x0, yb, x1, yb + 0.015 * height), body))
    return out


# -- composition ------------------------------------------------------------------------------------------------
def _place_people(rng: np.random.Generator, params, size: int, horizon: float) -> list[tuple[Figure, float]]:
    """Figures in pixels with their heights, sorted far to near (by the y of their soles)."""
    n = int(rng.integers(1, params.max_persons + 1))
    placed: list[tuple[Figure, float, np.ndarray]] = []
    lo, hi = np.log(params.min_height), np.log(params.max_height)
    for _ in range(n):
        unit = sample_figure(rng, params.back_p)
        ext = unit.extent()
        for _attempt in range(8):
            height = size * float(np.exp(rng.uniform(lo, hi)))
            soles = horizon + height * rng.uniform(0.85, 1.0)
            if placed and rng.random() < 0.35:
                other = placed[int(rng.integers(len(placed)))][2]
                side = 1.0 if rng.random() < 0.5 else -1.0
                cx = 0.5 * (other[0] + other[2]) + side * rng.uniform(0.2, 0.55) * max(height, other[3] - other[1])
            else:
                cx = rng.uniform(0.05, 0.95) * size
            offset = np.array([cx - height * 0.5 * (ext[0] + ext[2]), soles - height * ext[3]])
            box = ext * height + np.tile(offset, 2)
            if all(_overlap(box, b) <= _MAX_OVERLAP for _, _, b in placed):
                placed.append((unit.placed(height, offset), height, box))
                break
    placed.sort(key=lambda t: t[2][3])
    return [(f, h) for f, h, _ in placed]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller of two x0, y0, x1, y1 boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Camera effects: an illumination gradient, a little blur and sensor noise."""
    import cv2

    size = img.shape[0]
    t = rng.uniform(0, 2 * np.pi)
    coord = (np.cos(t) * np.arange(size)[None, :] + np.sin(t) * np.arange(size)[:, None]) / size
    gain = 1.0 + rng.uniform(0.0, 0.25) * (coord - coord.mean())
    out = img.astype(np.float32) * gain[..., None].astype(np.float32)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.4, 0.8))
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.float32(rng.uniform(1.5, 5.0))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, params, schema: KeypointSchema) -> Scene:
    """Draw one image and label its persons (see the module docstring).

    Args:
        rng: the image's own random stream.
        params: a :class:`~posefix_bench.engine.sandbox.dataset.SandboxParams`.
        schema: the keypoint layout of the labels; its keypoint names must be joints of the figure model.
    """
    unknown = [n for n in schema.keypoints if n not in JOINT_PARTS]
    if unknown:
        raise PosefixError(f"sandbox: schema {schema.name!r} has keypoints the figures lack: {unknown}")
    size = int(params.image_size)
    horizon = rng.uniform(0.15, 0.35) * size
    background = _background(rng, size, horizon)
    people = _place_people(rng, params, size, horizon)
    occluder_of = [_occluder(rng, fig, h, size) if rng.random() < params.occluder_p else None for fig, h in people]
    while True:  # a person left barely visible is removed (with their counter) and the scene painted again
        img, persons, occluders, hidden = _paint(background, people, occluder_of, schema)
        if not hidden:
            break
        people = [x for i, x in enumerate(people) if i not in hidden]
        occluder_of = [x for i, x in enumerate(occluder_of) if i not in hidden]
    return Scene(image=_finish(rng, img), persons=persons, occluders=occluders)


def _paint(background: np.ndarray, people, occluder_of, schema: KeypointSchema):
    """Paint back to front; returns the image, person labels, occluder records and the barely visible people."""
    size = background.shape[0]
    img = background.copy()
    owner = np.zeros((size, size), np.int32)
    order: list[tuple[str, int]] = []
    for p, occ in enumerate(occluder_of):
        order += [("person", p)] + ([("occluder", p)] if occ is not None else [])
    areas = [0] * len(people)
    for kind, i in order:
        if kind == "occluder":
            for poly, color in occluder_of[i]["decor"]:
                _fill(img, poly, color, True)
            _fill(owner, occluder_of[i]["polygon"], 1 + i, False)
            continue
        mask = np.zeros((size, size), np.uint8)
        for poly, color, part in people[i][0].shapes:
            _fill(img, poly, color, True)
            _fill(owner, poly, PERSON_ID_BASE + 100 * i + part, False)
            if part != BAG:
                _fill(mask, poly, 1, False)
        areas[i] = int(np.count_nonzero(mask))
    draw_order = {item: n for n, item in enumerate(order)}
    persons, hidden = [], set()
    for p, (fig, _) in enumerate(people):
        rec = _label(fig, p, owner, schema)
        n_visible = int((rec["keypoints"][:, 2] == 2).sum())
        if rec["visible_pixels"] < MIN_VISIBLE_FRACTION * areas[p] or n_visible < MIN_VISIBLE_JOINTS:
            hidden.add(p)
            continue
        del rec["visible_pixels"]
        rec.update(area=areas[p], back_view=fig.back_view, draw_order=draw_order[("person", p)])
        persons.append(rec)
    occluders = [{"polygon": o["polygon"], "kind": o["kind"], "draw_order": draw_order[("occluder", k)]}
                 for k, o in enumerate(occluder_of) if o is not None]
    return img, persons, occluders, hidden


def _label(fig: Figure, p: int, owner: np.ndarray, schema: KeypointSchema) -> dict:
    """COCO keypoints, bbox, occlusion tag and visible pixel count of person ``p``."""
    size = owner.shape[0]
    base = PERSON_ID_BASE + 100 * p
    body = (owner >= base) & (owner < base + len(PARTS)) & (owner != base + BAG)
    rows, cols = np.nonzero(body)
    if rows.size == 0:
        return {"keypoints": np.zeros((schema.num_keypoints, 3)), "visible_pixels": 0}
    kp = np.round(fig.keypoints(schema.keypoints), 2)
    k = schema.num_keypoints
    v = np.zeros(k, np.int64)
    by_occluder = np.zeros(k, bool)
    for j, name in enumerate(schema.keypoints):
        x, y = kp[j]
        if not (0.0 <= x <= size - 1 and 0.0 <= y <= size - 1):
            continue
        z = fig.face_depth.get(name)
        if z is not None and "ear" not in name and z <= FACE_LABELLED_Z:
            continue
        top = int(owner[int(np.rint(y)), int(np.rint(x))])
        by_occluder[j] = 0 < top < PERSON_ID_BASE
        own = top - base in JOINT_PARTS[name] and top >= base
        if z is not None:
            own = own and z > (EAR_VISIBLE_Z if "ear" in name else FACE_VISIBLE_Z)
        v[j] = 2 if own else 1
    kp[v == 0] = 0.0
    x0, x1 = max(cols.min() - 0.5, 0.0), min(cols.max() + 0.5, float(size))
    y0, y1 = max(rows.min() - 0.5, 0.0), min(rows.max() + 0.5, float(size))
    lower = list(schema.groups.get("lower", ()))
    return {
        "keypoints": np.concatenate([kp, v[:, None].astype(np.float64)], axis=1),
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "lower_body_occluded": bool(by_occluder[lower].sum() >= 2),
        "visible_pixels": int(rows.size),
    }
