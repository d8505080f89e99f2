"""A parametric 971-point face: the template shape and random identities, expressions and poses.

Shapes live in a normalised frame: x to the right, y down, the face about 1 wide and centred near 0.
The point order follows the competition's 971-point layout (`ensemble.competition.layout.FACE_971`);
"left" means smaller x, as seen in the image. Every right-hand feature is built as the mirror image
of a left-hand one (built from the right side's own parameters), so a symmetric parameter set gives
an exactly symmetric shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ensemble.competition.layout import FACE_971

N_POINTS = FACE_971.n_points


@dataclass(frozen=True)
class SideParams:
    """Parameters of one side of the face (as built on the left, then mirrored for the right)."""

    eye_open: float = 1.0  # scales the eyelid heights (blink < 1 < wide)
    eye_width: float = 0.1  # half-width of the eye opening
    eye_tilt: float = 0.0  # outer corner raised by this much
    gaze_x: float = 0.0  # iris shift towards the outer corner, in units of the eye half-width
    gaze_y: float = 0.0  # iris shift down, in units of the eye half-width
    brow_raise: float = 0.0  # whole brow raised by this much
    brow_inner_raise: float = 0.0  # inner end raised by this much (worry/surprise)


@dataclass(frozen=True)
class FaceParams:
    """Identity and expression of a face (pose is applied separately)."""

    half_width: float = 0.5
    chin_y: float = 0.62
    forehead_y: float = -0.72
    jaw_square: float = 2.3  # superellipse exponent of the jaw (2 = ellipse)
    crown_square: float = 2.2  # superellipse exponent of the forehead
    eye_y: float = -0.08
    eye_sep: float = 0.2  # half the distance between the eye centres
    iris_r: float = 0.032
    brow_gap: float = 0.12  # brow centre line above the eye centre
    brow_arch: float = 0.03
    brow_thick: float = 0.036
    brow_inner_x: float = 0.065
    nose_tip_y: float = 0.17
    nose_width: float = 0.085  # half-width of the alae
    mouth_y: float = 0.37
    mouth_half_width: float = 0.17
    upper_lip: float = 0.035
    lower_lip: float = 0.045
    mouth_open: float = 0.0
    smile: float = 0.0  # mouth corners raised by this much
    left: SideParams = SideParams()
    right: SideParams = SideParams()


def _superellipse(cos: np.ndarray, sin: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit superellipse |x|^p + |y|^p = 1 at the given directions."""
    scale = 2.0 / power
    return np.sign(cos) * np.abs(cos) ** scale, np.sign(sin) * np.abs(sin) ** scale


def _mirror(points: np.ndarray) -> np.ndarray:
    """Mirror points about x = 0."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, 0] = -out[:, 0]
    return out


def _resample(control: np.ndarray, n: int) -> np.ndarray:
    """`n` points equally spaced along a smooth curve near `control` (k, 2), ends included.

    The curve is Chaikin's corner cutting of the control polygon (a quadratic B-spline).
    """
    curve = np.asarray(control, dtype=np.float64)
    for _ in range(4):
        q = 0.75 * curve[:-1] + 0.25 * curve[1:]
        r = 0.25 * curve[:-1] + 0.75 * curve[1:]
        inner = np.stack([q, r], axis=1).reshape(-1, 2)
        curve = np.vstack([curve[:1], inner[1:-1], curve[-1:]])
    length = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))]
    targets = np.linspace(0.0, length[-1], n)
    return np.stack([np.interp(targets, length, curve[:, a]) for a in range(2)], axis=1)


def _oval(p: FaceParams) -> np.ndarray:
    """Face oval (273 points): lower left, lower right, upper right, forehead, upper left."""
    chin = p.chin_y + 0.6 * p.mouth_open
    # lower left: from the left ear level (angle -90 deg) down to the chin (0 deg)
    phi = -np.pi / 2 + np.pi * (np.arange(64) + 0.5) / 128
    ux, uy = _superellipse(np.sin(phi), np.cos(phi), p.jaw_square)
    taper = 1.0 - 0.12 * uy**3  # a narrower chin
    lower_left = np.stack([p.half_width * ux * taper, chin * uy], axis=1)
    # upper right: from the right ear level up to just before the forehead centre
    psi = np.pi * (np.arange(72) + 0.5) / 145
    vx, vy = _superellipse(np.cos(psi), np.sin(psi), p.crown_square)
    upper_right = np.stack([p.half_width * vx, p.forehead_y * vy], axis=1)
    forehead = np.array([[0.0, p.forehead_y]])
    return np.concatenate(
        [lower_left, _mirror(lower_left)[::-1], upper_right, forehead, _mirror(upper_right)[::-1]]
    )


def _brow(p: FaceParams, side: SideParams) -> np.ndarray:
    """Left eyebrow (64 points): upper edge inner to outer, lower edge outer to inner."""
    inner = -p.brow_inner_x
    outer = -(p.eye_sep + 1.45 * side.eye_width)

    def edge(u: np.ndarray, sign: float) -> np.ndarray:
        x = inner + (outer - inner) * u
        centre = (
            p.eye_y
            - p.brow_gap
            - side.brow_raise
            - side.brow_inner_raise * (1 - u) ** 2
            - p.brow_arch * np.sin(np.pi * u**0.8)
        )
        thick = p.brow_thick * (1.0 - 0.55 * u) + 0.008
        return np.stack([x, centre + sign * thick / 2], axis=1)

    upper = edge(np.arange(32) / 31, -1.0)
    lower = edge(1.0 - (np.arange(32) + 0.5) / 32, 1.0)
    return np.concatenate([upper, lower])


def _eye(p: FaceParams, side: SideParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left iris (63), left eye contour (64) and left pupil centre (1)."""
    cx, cy = -p.eye_sep, p.eye_y
    width = side.eye_width
    theta = 2 * np.pi * np.arange(64) / 64
    cos, sin = np.cos(theta), np.sin(theta)
    height = np.where(sin < 0, 0.5 * width, 0.4 * width) * side.eye_open
    # the upper lid peaks nearer the inner corner, the lower lid nearer the outer one
    height = height * (1.0 + 0.18 * cos * np.sign(-sin))
    x = cx - width * cos
    y = cy + height * sin - side.eye_tilt * cos
    contour = np.stack([x, y], axis=1)
    pupil = np.array([[cx - side.gaze_x * 0.35 * width, cy + side.gaze_y * 0.2 * width]])
    angle = 2 * np.pi * np.arange(63) / 63
    iris = pupil + p.iris_r * np.stack([-np.cos(angle), np.sin(angle)], axis=1)
    return iris, contour, pupil


def _nose_wing(p: FaceParams) -> np.ndarray:
    """Left nose wing (63 points): from beside the bridge down around the ala to the columella."""
    tip, width = p.nose_tip_y, p.nose_width
    control = np.array(
        [
            [-0.045, p.eye_y + 0.05],
            [-0.05, 0.5 * (p.eye_y + tip)],
            [-0.062, tip - 0.06],
            [-width, tip - 0.005],
            [-0.9 * width, tip + 0.03],
            [-0.55 * width, tip + 0.037],
            [-0.2 * width, tip + 0.03],
        ]
    )
    return _resample(control, 63)


def _nose_line(p: FaceParams) -> np.ndarray:
    """Nose centre line (60 points on x = 0) from the bridge down to below the tip."""
    y = np.linspace(p.eye_y - 0.01, p.nose_tip_y + 0.035, 60)
    return np.stack([np.zeros(60), y], axis=1)


def _lips(p: FaceParams) -> list[np.ndarray]:
    """Upper outer, upper inner, lower outer, lower inner (32 points each, left to right)."""
    full = np.linspace(-1.0, 1.0, 32)  # corners included
    half = -1.0 + 2 * (np.arange(32) + 0.5) / 32  # corners left out (no duplicate points)
    opening = p.mouth_open

    def base(t: np.ndarray) -> np.ndarray:
        return p.mouth_y - p.smile * t**2

    def gap(t: np.ndarray) -> np.ndarray:
        return opening * (1 - t**2) ** 0.7

    bow = (1 - full**2) ** 0.6 * (1 - 0.35 * np.exp(-((full / 0.2) ** 2)))
    upper_outer = np.stack(
        [p.mouth_half_width * full, base(full) - 0.25 * gap(full) - p.upper_lip * bow], axis=1
    )
    upper_inner = np.stack(
        [0.94 * p.mouth_half_width * full, base(full) - 0.25 * gap(full) + 0.002], axis=1
    )
    lower_outer = np.stack(
        [
            p.mouth_half_width * half,
            base(half) + 0.75 * gap(half) + p.lower_lip * (1 - half**2) ** 0.55,
        ],
        axis=1,
    )
    lower_inner = np.stack(
        [0.94 * p.mouth_half_width * half, base(half) + 0.75 * gap(half) + 0.004], axis=1
    )
    contours = []
    for contour in (upper_outer, upper_inner, lower_outer, lower_inner):
        contour[16:] = _mirror(contour[:16])[::-1]
        contours.append(contour)
    return contours


def _left_features(p: FaceParams, side: SideParams) -> dict[str, np.ndarray]:
    iris, eye, pupil = _eye(p, side)
    return {"brow": _brow(p, side), "wing": _nose_wing(p), "iris": iris, "eye": eye, "pupil": pupil}


def build_shape(params: FaceParams) -> np.ndarray:
    """The (971, 2) frontal shape of a face with the given identity and expression."""
    left = _left_features(params, params.left)
    right = {name: _mirror(points) for name, points in _left_features(params, params.right).items()}
    upper_outer, upper_inner, lower_outer, lower_inner = _lips(params)
    parts = [
        _oval(params),
        left["brow"],
        right["brow"],
        left["wing"],
        right["wing"],
        _nose_line(params),
        left["iris"],
        left["eye"],
        right["iris"],
        right["eye"],
        upper_outer,
        upper_inner,
        lower_outer,
        lower_inner,
        left["pupil"],
        right["pupil"],
    ]
    shape = np.concatenate(parts)
    assert shape.shape == (N_POINTS, 2)
    return shape


def _depth(shape: np.ndarray, half_width: float) -> np.ndarray:
    """A rough depth (towards the viewer) for every point: a rounded head plus the nose."""
    z = 0.38 * np.sqrt(np.clip(1.0 - (shape[:, 0] / (1.05 * half_width)) ** 2, 0.0, None))
    line = FACE_971.region("nose centre line")
    along = np.linspace(0.0, 1.0, len(line))
    z[line.start : line.stop] += 0.03 + 0.17 * np.sin(np.pi * 0.8 * along) ** 2
    for name in ("left nose wing", "right nose wing"):
        region = FACE_971.region(name)
        z[region.start : region.stop] += 0.06
    for name in ("upper lip, outer", "lower lip, outer"):
        region = FACE_971.region(name)
        z[region.start : region.stop] += 0.03
    return z


def rotate_3d(shape: np.ndarray, half_width: float, yaw: float, pitch: float) -> np.ndarray:
    """Turn a frontal shape by `yaw` and `pitch` (radians), orthographic projection."""
    z = _depth(shape, half_width)
    x = shape[:, 0] * np.cos(yaw) + z * np.sin(yaw)
    z2 = -shape[:, 0] * np.sin(yaw) + z * np.cos(yaw)
    y = shape[:, 1] * np.cos(pitch) - z2 * np.sin(pitch)
    return np.stack([x, y], axis=1)


def _side(rng: np.random.Generator, shared: dict[str, float]) -> SideParams:
    """One side's parameters: the shared values plus a little asymmetry."""
    return SideParams(
        eye_open=float(np.clip(shared["eye_open"] + rng.normal(0, 0.05), 0.25, 1.4)),
        eye_width=shared["eye_width"] * float(rng.normal(1.0, 0.03)),
        eye_tilt=shared["eye_tilt"] + float(rng.normal(0, 0.004)),
        gaze_x=shared["gaze_x"],
        gaze_y=shared["gaze_y"],
        brow_raise=shared["brow_raise"] + float(rng.normal(0, 0.006)),
        brow_inner_raise=shared["brow_inner_raise"] + float(rng.normal(0, 0.004)),
    )


def sample_params(rng: np.random.Generator) -> FaceParams:
    """A random identity with a random expression."""
    u = rng.uniform
    half_width = u(0.43, 0.56)
    eye_open = float(np.clip(rng.normal(1.0, 0.18), 0.3, 1.35))
    shared = {
        "eye_open": eye_open,
        "eye_width": u(0.085, 0.112),
        "eye_tilt": u(-0.012, 0.02),
        "gaze_x": u(-1.0, 1.0),
        "gaze_y": u(-0.8, 0.8),
        "brow_raise": max(0.0, rng.normal(0.0, 0.025)) + u(-0.01, 0.01),
        "brow_inner_raise": u(-0.015, 0.025),
    }
    gaze = float(shared["gaze_x"])
    left = _side(rng, shared)
    # the same gaze direction in the image is opposite relative to each eye's outer corner
    right = dataclasses.replace(_side(rng, shared), gaze_x=-gaze)
    return FaceParams(
        half_width=half_width,
        chin_y=u(0.55, 0.7),
        forehead_y=-u(0.62, 0.8),
        jaw_square=u(2.0, 2.9),
        crown_square=u(2.0, 2.5),
        eye_y=u(-0.12, -0.04),
        eye_sep=u(0.175, 0.225),
        iris_r=u(0.027, 0.037),
        brow_gap=u(0.1, 0.14),
        brow_arch=u(0.01, 0.045),
        brow_thick=u(0.024, 0.05),
        brow_inner_x=u(0.05, 0.08),
        nose_tip_y=u(0.13, 0.21),
        nose_width=u(0.07, 0.1),
        mouth_y=u(0.33, 0.42),
        mouth_half_width=u(0.14, 0.2),
        upper_lip=u(0.02, 0.045),
        lower_lip=u(0.03, 0.06),
        mouth_open=float(max(0.0, rng.normal(0.0, 0.06)) if rng.random() < 0.5 else 0.0),
        smile=u(-0.015, 0.035),
        left=left,
        right=right,
    )


def sample_shape(rng: np.random.Generator) -> tuple[np.ndarray, FaceParams]:
    """A random face shape (971, 2), turned by a mild yaw and pitch, with its parameters."""
    params = sample_params(rng)
    shape = build_shape(params)
    yaw = np.deg2rad(rng.uniform(-22.0, 22.0))
    pitch = np.deg2rad(rng.uniform(-10.0, 10.0))
    return rotate_3d(shape, params.half_width, yaw, pitch), params
