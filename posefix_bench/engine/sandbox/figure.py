"""Articulated 2D person figures with the COCO-17 joints, for the procedural sandbox data set (issue 8).

A figure is a kinematic tree drawn as filled shapes (capsule limbs, a torso polygon, an elliptic head with hair,
eyes, nose and ears), in units of the person's standing height (head top to soles = about 1), with the pelvis at
the origin and y pointing down. What varies per person:

- proportions: segment lengths (+-5 %), build (limb widths, shoulder and hip width), head size;
- the pose, drawn from a few archetypes (standing, walking, gesturing, crouching) and clipped to joint-angle
  limits (``ANGLE_LIMITS``); segments may be foreshortened (pointing towards or away from the camera);
- the body yaw: front views and back views (|cos yaw| >= 0.45, so the two sides stay apart), rendered as the
  orthographic projection of the shoulders, hips and face points rotated about the vertical axis; the head may
  turn up to 40 degrees further;
- clothing, skin and hair colours, sleeve and trouser length.

Left and right are told apart as on real people only through consistent, non-trivial cues: the person's LEFT limbs
are always shaded darker than the right ones (a factor drawn per person, 0.55-0.75, the same in front and back
views, so it survives down-scaling to a 64x48 crop), half the people carry a cross-body bag (strap from the left
shoulder, bag hanging on the left, drawn behind the body) and half wear a watch on the left wrist. Front and back
are told apart by the face (eyes, nose) versus hair covering the head.

Face points follow the head's 3D yaw: each has a depth ``z`` towards the camera (in head radii), which the scene
uses to label them (see :mod:`posefix_bench.engine.sandbox.scene`). Each shape carries a part code (``PART_*``);
the scene labels a joint visible only where one of its own parts (``JOINT_PARTS``) is on top.

Shape legend: P polygon vertices, K keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PARTS", "BAG", "JOINT_PARTS", "ANGLE_LIMITS", "FACE_VISIBLE_Z", "FACE_LABELLED_Z", "EAR_VISIBLE_Z",
    "Figure", "sample_figure", "capsule", "ellipse", "hsv_to_rgb",
]  # fmt: skip

# part codes of one figure, in no particular drawing order
PARTS = (
    "head", "neck", "torso",
    "left_upper_arm", "left_forearm", "left_hand", "right_upper_arm", "right_forearm", "right_hand",
    "left_thigh", "left_shin", "left_foot", "right_thigh", "right_shin", "right_foot",
    "bag",
)  # fmt: skip
_P = {name: i for i, name in enumerate(PARTS)}
BAG = _P["bag"]


def _side_parts(side: str) -> dict[str, tuple[int, ...]]:
    p = lambda n: _P[f"{side}_{n}"]  # noqa: E731
    return {
        f"{side}_shoulder": (_P["torso"], p("upper_arm")),
        f"{side}_elbow": (p("upper_arm"), p("forearm")),
        f"{side}_wrist": (p("forearm"), p("hand")),
        f"{side}_hip": (_P["torso"], p("thigh")),
        f"{side}_knee": (p("thigh"), p("shin")),
        f"{side}_ankle": (p("shin"), p("foot")),
        f"{side}_eye": (_P["head"],),
        f"{side}_ear": (_P["head"],),
    }


# the parts a joint lies on: a joint is visible where one of them is the top-most shape at the joint's pixel
JOINT_PARTS: dict[str, tuple[int, ...]] = {"nose": (_P["head"],), **_side_parts("left"), **_side_parts("right")}

# face-point depths (head radii towards the camera) that decide drawing and labelling: nose and eyes are drawn
# and may be visible above FACE_VISIBLE_Z, are labelled as occluded down to FACE_LABELLED_Z (a profile: the
# position is inferable) and are not labelled beyond (the back of the head, as COCO annotators leave them); ears
# are drawn and may be visible above EAR_VISIBLE_Z and are labelled occluded behind the head otherwise.
FACE_VISIBLE_Z = 0.1
FACE_LABELLED_Z = -0.5
EAR_VISIBLE_Z = -0.3

# joint-angle limits in degrees. Arm and leg angles are measured from the body's down direction towards the
# side's outer (lateral) direction; the lower segment's angle is relative to the upper one's.
ANGLE_LIMITS = {
    "lean": (-30.0, 30.0),  # torso, from vertical
    "head_tilt": (-30.0, 30.0),  # head roll, relative to the torso
    "head_turn": (-40.0, 40.0),  # head yaw, relative to the body
    "shoulder": (-40.0, 175.0),  # upper arm
    "elbow": (-150.0, 30.0),  # forearm relative to upper arm (negative: bends in, towards the body)
    "hip": (-25.0, 50.0),  # thigh
    "knee": (-45.0, 35.0),  # shin relative to thigh
}

# segment lengths and half-widths in units of the standing height (adult proportions, ~7.5 heads)
_DIMS = {
    "head_r": 0.062, "neck": 0.035, "torso": 0.29, "shoulder": 0.105, "hip": 0.075,
    "upper_arm": 0.165, "forearm": 0.145, "hand": 0.05, "thigh": 0.235, "shin": 0.225, "foot": 0.06,
    "w_upper_arm": 0.030, "w_forearm": 0.024, "w_hand": 0.022, "w_thigh": 0.046, "w_shin": 0.034,
    "w_foot": 0.022, "w_neck": 0.027,
}  # fmt: skip

_SKIN = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 30)])
_HAIR = np.array([(30, 22, 16), (70, 45, 25), (120, 80, 40), (205, 170, 100), (95, 95, 95), (160, 60, 30)])


@dataclass
class Figure:
    """One person, in image pixels after :meth:`placed` (in height units before).

    Attributes:
        joints: joint name -> (2,) x, y.
        face_depth: face-point name -> depth towards the camera in head radii (> 0: on the visible side).
        shapes: drawing order, back to front: (polygon (P, 2), RGB colour, part code).
        back_view: the body faces away from the camera.
    """

    joints: dict[str, np.ndarray]
    face_depth: dict[str, float]
    shapes: list[tuple[np.ndarray, tuple[int, int, int], int]]
    back_view: bool

    def placed(self, height: float, offset: np.ndarray) -> "Figure":
        """The figure scaled by ``height`` pixels and translated by ``offset`` (2,)."""
        off = np.asarray(offset, dtype=np.float64)
        return Figure(
            joints={k: v * height + off for k, v in self.joints.items()},
            face_depth=dict(self.face_depth),
            shapes=[(poly * height + off, color, part) for poly, color, part in self.shapes],
            back_view=self.back_view,
        )

    def extent(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 of all shapes."""
        pts = np.concatenate([poly for poly, _, part in self.shapes if part != BAG])
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)])

    def keypoints(self, names) -> np.ndarray:
        """(K, 2) joint positions in the order of ``names`` (a schema's keypoint names)."""
        return np.stack([self.joints[n] for n in names])


# -- geometry ------------------------------------------------------------------------------------------------
def _rot(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def capsule(a: np.ndarray, b: np.ndarray, ra: float, rb: float, n: int = 7) -> np.ndarray:
    """(P, 2) polygon of a tapered limb from ``a`` (radius ``ra``) to ``b`` (radius ``rb``) with round ends."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = b - a
    ang = np.arctan2(d[1], d[0]) if np.hypot(*d) > 1e-9 else np.pi / 2
    tb = ang + np.linspace(-np.pi / 2, np.pi / 2, n)
    ta = ang + np.linspace(np.pi / 2, 3 * np.pi / 2, n)
    arc = lambda c, r, t: c + r * np.stack([np.cos(t), np.sin(t)], 1)  # noqa: E731
    return np.concatenate([arc(b, rb, tb), arc(a, ra, ta)])


def ellipse(center, rx: float, ry: float, rot_deg: float = 0.0, n: int = 20, t0: float = 0.0,
            t1: float = 2 * np.pi) -> np.ndarray:
    """(P, 2) polygon of an ellipse (or of the arc ``t0``..``t1`` closed by its chord), rotated by ``rot_deg``."""
    t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * np.pi - 1e-9)
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1)
    return pts @ _rot(rot_deg).T + np.asarray(center, np.float64)


def hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    """h in [0, 1), s, v in [0, 1] -> RGB uint8 triple."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _shade(color, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(c * factor), 0, 255)) for c in color)


# -- sampling ------------------------------------------------------------------------------------------------
def _sample_dims(rng: np.random.Generator) -> dict[str, float]:
    d = dict(_DIMS)
    for k in ("neck", "torso", "upper_arm", "forearm", "thigh", "shin", "foot", "hand"):
        d[k] *= float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12))
    build = float(rng.uniform(0.8, 1.3))
    for k in d:
        if k.startswith("w_"):
            d[k] *= build * float(rng.uniform(0.92, 1.08))
    d["shoulder"] *= build**0.5 * float(rng.uniform(0.9, 1.1))
    d["hip"] *= build**0.5 * float(rng.uniform(0.9, 1.1))
    d["head_r"] *= float(np.clip(rng.normal(1.0, 0.06), 0.85, 1.15))
    return d


def _sample_pose(rng: np.random.Generator) -> dict:
    """Joint angles (degrees) and segment foreshortening factors from one of four archetypes, within limits."""
    kind = rng.choice(["stand", "walk", "gesture", "crouch"], p=[0.35, 0.25, 0.28, 0.12])
    pose: dict = {"kind": str(kind), "lean": rng.normal(0, 6), "head_tilt": rng.normal(0, 9),
                  "head_turn": rng.normal(0, 18)}
    for side in ("left", "right"):
        if kind == "gesture" and rng.random() < 0.75:
            sh, el = rng.uniform(30, 170), rng.uniform(-130, 30)
        elif kind == "walk":
            sh, el = rng.uniform(-10, 30), rng.uniform(-70, 10)
        else:
            sh, el = rng.uniform(-5, 30), rng.uniform(-40, 15)
            if rng.random() < 0.2:  # hand on the hip or across the body
                sh, el = rng.uniform(15, 45), rng.uniform(-150, -90)
        if kind == "crouch":
            hp, kn = rng.uniform(0, 45), rng.uniform(-45, 0)
        elif kind == "walk":
            hp, kn = rng.uniform(-12, 22), rng.uniform(-25, 20)
        else:
            hp, kn = rng.uniform(-5, 15), rng.uniform(-10, 10)
        pose[f"{side}_shoulder"], pose[f"{side}_elbow"] = sh, el
        pose[f"{side}_hip"], pose[f"{side}_knee"] = hp, kn
        fore = lambda: 1.0 if rng.random() < 0.7 else rng.uniform(0.6, 1.0)  # noqa: E731
        pose[f"{side}_f"] = (fore(), fore(), rng.uniform(0.3, 0.6) if kind == "crouch" else fore(), fore())
    if kind == "crouch":
        pose["lean"] = rng.normal(0, 10)
    for key, (lo, hi) in ANGLE_LIMITS.items():
        for name in [k for k in pose if k == key or k.endswith("_" + key)]:
            pose[name] = float(np.clip(pose[name], lo, hi))
    return pose


def _sample_colors(rng: np.random.Generator) -> dict:
    skin = tuple(int(c) for c in np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.integers(-12, 13, 3), 0, 255))
    hair = tuple(int(c) for c in np.clip(_HAIR[rng.integers(len(_HAIR))] + rng.integers(-10, 11, 3), 0, 255))
    return {
        "skin": skin,
        "hair": hair,
        "shirt": hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.35, 0.95)),
        "pants": hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.15, 0.6)),
        "shoes": hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.35)),
        "bag": hsv_to_rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.9)),
        "watch": hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.7, 1.0)),
        "left_shade": float(rng.uniform(0.55, 0.75)),
        "long_sleeves": bool(rng.random() < 0.5),
        "long_pants": bool(rng.random() < 0.7),
        "bag_on": bool(rng.random() < 0.5),
        "watch_on": bool(rng.random() < 0.5),
    }


def sample_figure(rng: np.random.Generator, back_p: float = 0.25) -> Figure:
    """A random figure in height units (pelvis at the origin, y down), facing away with probability ``back_p``."""
    dims, pose, colors = _sample_dims(rng), _sample_pose(rng), _sample_colors(rng)
    yaw = np.deg2rad(rng.uniform(-63, 63) + (180.0 if rng.random() < back_p else 0.0))
    return _build(dims, pose, colors, yaw)


# -- construction ----------------------------------------------------------------------------------------------
def _build(d: dict, pose: dict, colors: dict, yaw: float) -> Figure:
    cos_y, sin_y = np.cos(yaw), np.sin(yaw)
    lean = _rot(pose["lean"])
    down, lat = lean @ np.array([0.0, 1.0]), lean @ np.array([1.0, 0.0])
    leg_frame = _rot(0.3 * pose["lean"])
    j: dict[str, np.ndarray] = {}
    sides = {"left": 1.0, "right": -1.0}  # x of the person's left side in body coordinates
    neck = -d["torso"] * down
    for side, sx in sides.items():
        j[f"{side}_hip"] = leg_frame @ np.array([sx * d["hip"] * cos_y, 0.0])
        j[f"{side}_shoulder"] = neck + sx * d["shoulder"] * cos_y * lat + 0.02 * down
    limbs = {side: _limbs(j, d, pose, side, np.sign(sx * cos_y), lean, leg_frame) for side, sx in sides.items()}
    for side in sides:
        j.update(limbs[side]["joints"])
    head_c = neck - (d["neck"] + 1.1 * d["head_r"]) * (lean @ _rot(pose["head_tilt"]) @ np.array([0.0, 1.0]))
    head_rot = pose["lean"] + pose["head_tilt"]
    face, face_depth = _face_points(head_c, d["head_r"], yaw + np.deg2rad(pose["head_turn"]), head_rot)
    j.update(face)

    shade = {"left": colors["left_shade"], "right": 1.0}
    near = "left" if sin_y < 0 else "right"  # the side turned towards the camera
    far = "right" if near == "left" else "left"
    shapes: list = []
    if colors["bag_on"]:
        shapes += _bag(j, d, colors, np.sign(cos_y), lat, down)
    for side in (far, near):
        shapes += _colored(limbs[side]["legs"], colors, shade[side])
    arms_first = abs(sin_y) >= 0.3
    if arms_first:
        shapes += _colored(limbs[far]["arms"], colors, shade[far])
    shapes += _torso(j, d, colors, neck, down, lat, cos_y)
    shapes += _head(j, d, colors, head_c, head_rot, yaw + np.deg2rad(pose["head_turn"]), neck, face_depth)
    for side in ((near,) if arms_first else (far, near)):
        shapes += _colored(limbs[side]["arms"], colors, shade[side])
    return Figure(joints=j, face_depth=face_depth, shapes=shapes, back_view=bool(cos_y < 0))


def _limbs(j, d, pose, side, lateral_sign, lean, leg_frame) -> dict:
    """One side's arm and leg: joints and (polygon, colour key, part) shapes, colour keys resolved later."""
    f_up, f_lo, f_th, f_sh = pose[f"{side}_f"]

    def direction(frame, angle):
        t = np.deg2rad(angle)
        return frame @ np.array([lateral_sign * np.sin(t), np.cos(t)])

    sh = j[f"{side}_shoulder"]
    a1 = pose[f"{side}_shoulder"]
    elbow = sh + d["upper_arm"] * f_up * direction(lean, a1)
    a2 = a1 + pose[f"{side}_elbow"]
    wrist = elbow + d["forearm"] * f_lo * direction(lean, a2)
    hand_tip = wrist + d["hand"] * direction(lean, a2)
    hip = j[f"{side}_hip"]
    g1 = pose[f"{side}_hip"]
    knee = hip + d["thigh"] * f_th * direction(leg_frame, g1)
    ankle = knee + d["shin"] * f_sh * direction(leg_frame, g1 + pose[f"{side}_knee"])
    toe = ankle + d["foot"] * direction(leg_frame, 55.0)
    p = lambda n: _P[f"{side}_{n}"]  # noqa: E731
    arms = [
        (capsule(sh, elbow, d["w_upper_arm"], 0.9 * d["w_upper_arm"]), "shirt", p("upper_arm")),
        (capsule(elbow, wrist, d["w_forearm"], 0.8 * d["w_forearm"]), "forearm", p("forearm")),
        (capsule(wrist, hand_tip, 0.9 * d["w_hand"], d["w_hand"]), "skin", p("hand")),
    ]
    if side == "left":
        band = capsule(wrist + 0.18 * (elbow - wrist), wrist + 0.32 * (elbow - wrist), 0.95 * d["w_forearm"],
                       0.95 * d["w_forearm"], n=3)
        arms.append((band, "watch", p("forearm")))
    legs = [
        (capsule(hip, knee, d["w_thigh"], 0.8 * d["w_thigh"]), "pants", p("thigh")),
        (capsule(knee, ankle, d["w_shin"], 0.75 * d["w_shin"]), "shin", p("shin")),
        (capsule(ankle, toe, 0.9 * d["w_foot"], d["w_foot"]), "shoes", p("foot")),
    ]
    return {"joints": {f"{side}_elbow": elbow, f"{side}_wrist": wrist, f"{side}_knee": knee,
                       f"{side}_ankle": ankle}, "arms": arms, "legs": legs}


def _colored(shapes, colors, shade: float) -> list:
    out = []
    for poly, key, part in shapes:
        if key == "watch" and not colors["watch_on"]:
            continue
        if key == "forearm":
            key = "shirt" if colors["long_sleeves"] else "skin"
        elif key == "shin":
            key = "pants" if colors["long_pants"] else "skin"
        color = colors[key] if key == "watch" else _shade(colors[key], shade)
        out.append((poly, color, part))
    return out


def _torso(j, d, colors, neck, down, lat, cos_y) -> list:
    """Shirt (shoulders to waist) and trousers top (waist to hips) as one torso part."""
    ls, rs, lh, rh = j["left_shoulder"], j["right_shoulder"], j["left_hip"], j["right_hip"]
    out_s = 0.8 * d["w_upper_arm"]
    out_h = 0.6 * d["w_thigh"]
    sgn = np.sign(cos_y)
    top_l = ls + sgn * out_s * lat - 0.035 * down
    top_r = rs - sgn * out_s * lat - 0.035 * down
    waist_l = 0.6 * ls + 0.4 * lh + sgn * 0.35 * out_s * lat
    waist_r = 0.6 * rs + 0.4 * rh - sgn * 0.35 * out_s * lat
    hip_l = lh + sgn * out_h * lat + 0.02 * down
    hip_r = rh - sgn * out_h * lat + 0.02 * down
    neck_l = neck + sgn * 0.6 * d["w_neck"] * lat - 0.01 * down
    neck_r = neck - sgn * 0.6 * d["w_neck"] * lat - 0.01 * down
    torso = _P["torso"]
    shirt = np.stack([neck_l, top_l, waist_l, hip_l, hip_r, waist_r, top_r, neck_r])
    belt_l, belt_r = 0.72 * waist_l + 0.28 * hip_l, 0.72 * waist_r + 0.28 * hip_r
    pants = np.stack([belt_l, hip_l, 0.5 * (hip_l + hip_r) + 0.03 * down, hip_r, belt_r])
    shapes = [(shirt, colors["shirt"], torso), (pants, colors["pants"], torso)]
    if colors["bag_on"]:  # cross-body strap from the left shoulder to the right hip
        a = ls - sgn * 0.25 * d["shoulder"] * lat
        b = rh - sgn * 0.1 * d["hip"] * lat - 0.03 * down
        shapes.append((capsule(a, b, 0.011, 0.011, n=3), _shade(colors["bag"], 0.7), torso))
    return shapes


def _bag(j, d, colors, facing, lat, down) -> list:
    """A bag hanging on the person's left side, drawn behind the body."""
    lh = j["left_hip"]
    centre = lh + facing * (0.055 + 0.35 * d["hip"]) * lat - 0.01 * down
    w, h = 0.075, 0.065
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) * 0.5
    poly = centre + corners[:, :1] * lat + corners[:, 1:] * down
    return [(poly, colors["bag"], BAG)]


def _face_points(center, r, yaw, roll_deg):
    """Nose, eyes, ears: 3D points on a head sphere (x: person's left, y: down, z: to the camera) turned by
    ``yaw`` about the vertical axis, projected orthographically and rolled in the image plane."""
    pts3 = {"nose": (0.0, 0.25, 1.0), "left_eye": (0.38, -0.12, 0.88), "right_eye": (-0.38, -0.12, 0.88),
            "left_ear": (0.97, 0.05, -0.12), "right_ear": (-0.97, 0.05, -0.12)}
    roll = _rot(roll_deg)
    pts, depth = {}, {}
    for name, (x, y, z) in pts3.items():
        xp = x * np.cos(yaw) + z * np.sin(yaw)
        zp = -x * np.sin(yaw) + z * np.cos(yaw)
        pts[name] = center + roll @ np.array([xp, y]) * r
        depth[name] = float(zp)
    return pts, depth


def _head(j, d, colors, center, roll, yaw, neck, face_depth) -> list:
    r = d["head_r"]
    head = _P["head"]
    back = np.cos(yaw) < 0
    up = _rot(roll) @ np.array([0.0, -1.0])
    shapes = [(capsule(neck, center + 0.6 * r * (-up), d["w_neck"], d["w_neck"]), colors["skin"], _P["neck"])]
    shapes.append((ellipse(center, 0.92 * r, 1.1 * r, roll), colors["skin"], head))
    side = _rot(roll) @ np.array([1.0, 0.0])
    if back:  # hair covers the back of the head down to the nape
        hc = center + 0.05 * r * up + 0.2 * r * np.sin(yaw) * side
        shapes.append((ellipse(hc, 0.95 * r, 1.08 * r, roll), colors["hair"], head))
    else:
        hc = center + 0.45 * r * up - 0.3 * r * np.sin(yaw) * side
        shapes.append((ellipse(hc, 0.98 * r, 0.78 * r, roll, t0=np.pi * 0.95, t1=np.pi * 2.05), colors["hair"], head))
    for ear in ("left_ear", "right_ear"):
        if face_depth[ear] > EAR_VISIBLE_Z:
            shapes.append((ellipse(j[ear], 0.2 * r, 0.3 * r, roll, n=8), _shade(colors["skin"], 0.9), head))
    eye_color = (25, 20, 20)
    for eye in ("left_eye", "right_eye"):
        if face_depth[eye] > FACE_VISIBLE_Z:
            shapes.append((ellipse(j[eye], 0.13 * r, 0.13 * r, n=8), eye_color, head))
    if face_depth["nose"] > FACE_VISIBLE_Z:
        n = j["nose"]
        shapes.append((ellipse(n, 0.12 * r, 0.16 * r, roll, n=8), _shade(colors["skin"], 0.75), head))
    return shapes
