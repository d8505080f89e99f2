"""Draw a face image from its 971 landmarks: skin, hair, eyes, brows, nose, lips, on clutter."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ensemble.competition.layout import FACE_971

SUPERSAMPLE = 2
_TILE = 1024

_SKIN = np.array(
    [
        (255, 224, 199),
        (243, 200, 170),
        (226, 176, 140),
        (200, 140, 100),
        (165, 108, 72),
        (120, 78, 52),
        (86, 56, 40),
    ],
    dtype=np.float64,
)
_HAIR = np.array(
    [(28, 22, 18), (60, 40, 28), (100, 68, 42), (190, 155, 95), (140, 60, 30), (160, 160, 160)],
    dtype=np.float64,
)
_IRIS = np.array(
    [(90, 55, 30), (60, 38, 22), (70, 110, 160), (80, 120, 80), (120, 95, 50), (100, 110, 120)],
    dtype=np.float64,
)


def _r(name: str) -> slice:
    region = FACE_971.region(name)
    return slice(region.start, region.stop)


OVAL = slice(0, 273)
LEFT_BROW, RIGHT_BROW = _r("left eyebrow"), _r("right eyebrow")
LEFT_WING, RIGHT_WING = _r("left nose wing"), _r("right nose wing")
NOSE_LINE = _r("nose centre line")
LEFT_IRIS, LEFT_EYE = _r("left iris"), _r("left eye")
RIGHT_IRIS, RIGHT_EYE = _r("right iris"), _r("right eye")
UPPER_OUTER, UPPER_INNER = _r("upper lip, outer"), _r("upper lip, inner")
LOWER_OUTER, LOWER_INNER = _r("lower lip, outer"), _r("lower lip, inner")
LEFT_PUPIL, RIGHT_PUPIL = 969, 970


def _colour(values: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.rint(values), 0, 255))


def _poly(points: np.ndarray) -> list[float]:
    return np.asarray(points, dtype=np.float64).ravel().tolist()


def _supersampled(points: np.ndarray) -> np.ndarray:
    return SUPERSAMPLE * points + (SUPERSAMPLE - 1) / 2


def _ellipse(centre: np.ndarray, axis: np.ndarray, a: float, b: float, n: int = 32) -> np.ndarray:
    """Polygon of an ellipse with half-axes a (along unit `axis`) and b (across it)."""
    normal = np.array([-axis[1], axis[0]])
    t = 2 * np.pi * np.arange(n) / n
    return centre + np.outer(a * np.cos(t), axis) + np.outer(b * np.sin(t), normal)


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A cluttered background: a colour gradient with random shapes."""
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    angle = rng.uniform(0, 2 * np.pi)
    gw, gh = max(2, width // 8), max(2, height // 8)
    yy, xx = np.mgrid[0:gh, 0:gw] / max(gw, gh)
    ramp = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)
    grad = c0 + ramp[..., None] * (c1 - c0)
    image = Image.fromarray(grad.astype(np.uint8)).resize((width, height), Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    size = max(width, height)
    for _ in range(int(rng.integers(6, 22))):
        colour = _colour(rng.uniform(0, 255, 3))
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        extent = rng.uniform(0.03, 0.35) * size
        kind = rng.integers(4)
        if kind == 0:
            box = [cx - extent, cy - extent * rng.uniform(0.3, 1), cx + extent, cy + extent]
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            box = [cx, cy, cx + extent * rng.uniform(0.3, 2), cy + extent * rng.uniform(0.3, 2)]
            draw.rectangle(box, fill=colour)
        elif kind == 2:
            corners = np.array([cx, cy]) + rng.uniform(
                -extent, extent, (int(rng.integers(3, 7)), 2)
            )
            draw.polygon(_poly(corners), fill=colour)
        else:
            end = np.array([cx, cy]) + rng.uniform(-2 * extent, 2 * extent, 2)
            width_px = int(rng.integers(1, max(2, size // 25)))
            draw.line([(cx, cy), tuple(end)], fill=colour, width=width_px)
    return image


def _appearance(rng: np.random.Generator) -> dict:
    """Random colours and styles of one face."""
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.92, 1.05) + rng.normal(0, 6, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.15)
    iris = _IRIS[rng.integers(len(_IRIS))] * rng.uniform(0.8, 1.2)
    lips = skin * np.array([0.82, 0.55, 0.55]) + np.array([30, 0, 5])
    if rng.random() < 0.15:
        lips = np.array([rng.uniform(140, 210), rng.uniform(10, 50), rng.uniform(30, 70)])
    return {
        "skin": skin,
        "hair": hair,
        "brow": np.minimum(hair, skin * 0.55) * rng.uniform(0.7, 1.0),
        "iris": iris,
        "lips": lips,
        "clothes": rng.uniform(10, 240, 3),
        "hair_style": int(rng.integers(4)),  # 0 bald/shaved, 1 short, 2 volume, 3 long
        "hair_volume": rng.uniform(0.05, 0.25),
    }


def _frame(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Face centre, right (eye line) and down unit vectors, face width and height."""
    across = p[RIGHT_PUPIL] - p[LEFT_PUPIL]
    across = across / np.linalg.norm(across)
    down = np.array([-across[1], across[0]])
    centre = p[OVAL].mean(axis=0)
    width = float(np.linalg.norm(p[127] - p[0]))
    height = float(np.dot(0.5 * (p[63] + p[64]) - p[200], down))
    return centre, across, down, width, height


def _draw_body(draw: ImageDraw.ImageDraw, p: np.ndarray, look: dict) -> None:
    centre, across, down, width, height = _frame(p)
    chin = 0.5 * (p[63] + p[64])
    neck = np.array(
        [
            p[36],
            p[91],
            chin + 0.27 * width * across + 0.8 * height * down,
            chin - 0.27 * width * across + 0.8 * height * down,
        ]
    )
    shoulder = chin + 0.3 * height * down
    body = np.array(
        [
            shoulder - 0.35 * width * across,
            shoulder + 0.35 * width * across,
            shoulder + 1.8 * width * across + 0.35 * height * down,
            shoulder + 2.0 * width * across + 3 * height * down,
            shoulder - 2.0 * width * across + 3 * height * down,
            shoulder - 1.8 * width * across + 0.35 * height * down,
        ]
    )
    draw.polygon(_poly(neck), fill=_colour(look["skin"] * 0.78))
    draw.polygon(_poly(body), fill=_colour(look["clothes"]))
    draw.polygon(
        _poly(
            neck[:2].tolist() + [shoulder + 0.25 * width * across, shoulder - 0.25 * width * across]
        ),
        fill=_colour(look["skin"] * 0.72),
    )


def _draw_ears_and_hair(draw: ImageDraw.ImageDraw, p: np.ndarray, look: dict) -> None:
    centre, across, down, width, height = _frame(p)
    for index, sign in ((0, -1.0), (127, 1.0)):
        ear = _ellipse(
            p[index] + sign * 0.03 * width * across + 0.05 * height * down,
            down,
            0.13 * height,
            0.07 * width,
        )
        draw.polygon(_poly(ear), fill=_colour(look["skin"] * 0.88))
    style = look["hair_style"]
    if style == 0:
        return
    upper = p[128:273]
    offset = upper - centre
    rise = np.clip(-(offset @ down) / (0.5 * height), 0, None)  # 1 at the top, 0 at the ears
    grow = 1.05 + (0.04 + look["hair_volume"] * (style >= 2)) * rise
    hair = centre + offset * grow[:, None] - 0.06 * height * rise[:, None] * down
    if style == 3:
        right_end = p[127] + 0.12 * width * across + 0.65 * height * down
        left_end = p[0] - 0.12 * width * across + 0.65 * height * down
        hair = np.vstack([right_end, hair, left_end])
    draw.polygon(_poly(hair), fill=_colour(look["hair"]))


def _draw_eye(
    image: Image.Image, p: np.ndarray, eye: slice, iris: slice, pupil: int, look: dict, width: float
) -> None:
    """Sclera, iris and pupil clipped to the eyelids, then the lid lines."""
    contour, ring, centre = p[eye], p[iris], p[pupil]
    lo = np.floor(np.minimum(contour.min(axis=0), ring.min(axis=0))).astype(int) - 4
    hi = np.ceil(np.maximum(contour.max(axis=0), ring.max(axis=0))).astype(int) + 4
    box = (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))
    crop = image.crop(box)
    size = crop.size
    shift = lo.astype(np.float64)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).polygon(_poly(contour - shift), fill=255)
    inner = Image.new("RGB", size, _colour(np.array([235, 232, 225]) * 0.93))
    d = ImageDraw.Draw(inner)
    d.polygon(_poly(ring - shift), fill=_colour(look["iris"] * 0.6))
    radius = float(np.linalg.norm(ring - centre, axis=1).mean())
    c = centre - shift
    d.ellipse([*(c - 0.82 * radius), *(c + 0.82 * radius)], fill=_colour(look["iris"]))
    d.ellipse([*(c - 0.38 * radius), *(c + 0.38 * radius)], fill=(12, 10, 10))
    glint = c + np.array([-0.3, -0.35]) * radius
    d.ellipse([*(glint - 0.13 * radius), *(glint + 0.13 * radius)], fill=(250, 250, 250))
    crop.paste(inner, (0, 0), mask)
    image.paste(crop, box[:2])
    draw = ImageDraw.Draw(image)
    lid = max(1, int(round(0.012 * width)))
    n = len(contour)
    upper = contour[n // 2 :].tolist() + [contour[0].tolist()]
    lower = contour[: n // 2 + 1]
    draw.line(
        _poly(np.array(upper)), fill=_colour(look["brow"] * 0.6), width=lid + 1, joint="curve"
    )
    draw.line(_poly(lower), fill=_colour(look["skin"] * 0.6), width=lid, joint="curve")
    centre_of_eye = contour.mean(axis=0)
    crease = centre_of_eye + 1.35 * (np.array(upper[4:-4]) - centre_of_eye)
    draw.line(_poly(crease), fill=_colour(look["skin"] * 0.8), width=lid, joint="curve")


def _draw_nose(draw: ImageDraw.ImageDraw, p: np.ndarray, look: dict, width: float) -> None:
    skin = look["skin"]
    line = p[NOSE_LINE]
    thin = max(1, int(round(0.008 * width)))
    for wing in (LEFT_WING, RIGHT_WING):
        curve = p[wing]
        draw.line(_poly(curve[:30]), fill=_colour(skin * 0.9), width=thin, joint="curve")
        draw.line(_poly(curve[28:]), fill=_colour(skin * 0.55), width=2 * thin, joint="curve")
        nostril = 0.5 * (curve[50] + line[-1])
        axis = curve[62] - curve[40]
        axis = axis / np.linalg.norm(axis)
        draw.polygon(
            _poly(_ellipse(nostril, axis, 0.03 * width, 0.012 * width)), fill=_colour(skin * 0.35)
        )
    draw.line(_poly(line[5:40]), fill=_colour(skin * 1.07), width=2 * thin, joint="curve")
    tip = line[48]
    draw.ellipse([*(tip - 0.025 * width), *(tip + 0.025 * width)], fill=_colour(skin * 1.06))


def _draw_mouth(draw: ImageDraw.ImageDraw, p: np.ndarray, look: dict, width: float) -> None:
    lips = look["lips"]
    outer = np.vstack([p[UPPER_OUTER], p[LOWER_OUTER][::-1]])
    upper = np.vstack([p[UPPER_OUTER], p[UPPER_INNER][::-1]])
    opening = np.vstack([p[UPPER_INNER], p[LOWER_INNER][::-1]])
    draw.polygon(_poly(outer), fill=_colour(lips * 1.05))
    draw.polygon(_poly(upper), fill=_colour(lips * 0.88))
    draw.polygon(_poly(opening), fill=(45, 15, 20))
    gap = np.linalg.norm(p[UPPER_INNER][16] - p[LOWER_INNER][16])
    if gap > 0.04 * width:
        teeth = p[UPPER_INNER][6:26]
        drop = min(0.45 * gap, 0.06 * width)
        _, _, down, _, _ = _frame(p)
        band = np.vstack([teeth, (teeth + drop * down)[::-1]])
        draw.polygon(_poly(band), fill=(225, 220, 205))
    seam = max(1, int(round(0.006 * width)))
    draw.line(_poly(p[UPPER_INNER]), fill=_colour(lips * 0.45), width=seam, joint="curve")


def _draw_face(image: Image.Image, p: np.ndarray, look: dict) -> None:
    """Everything on the face, in supersampled pixel coordinates."""
    draw = ImageDraw.Draw(image)
    _draw_body(draw, p, look)
    _draw_ears_and_hair(draw, p, look)
    draw.polygon(_poly(p[OVAL]), fill=_colour(look["skin"]))
    width = _frame(p)[3]
    for brow in (LEFT_BROW, RIGHT_BROW):
        draw.polygon(_poly(p[brow]), fill=_colour(look["brow"]))
    _draw_nose(draw, p, look, width)
    _draw_mouth(draw, p, look, width)
    _draw_eye(image, p, LEFT_EYE, LEFT_IRIS, LEFT_PUPIL, look, width)
    _draw_eye(image, p, RIGHT_EYE, RIGHT_IRIS, RIGHT_PUPIL, look, width)


def _face_shading(p: np.ndarray, width: int, height: int, strength: float) -> np.ndarray:
    """A multiplier (height, width) that darkens the face towards its outline (a rounded head)."""
    small = 4
    sw, sh = max(2, width // small), max(2, height // small)
    mask = Image.new("L", (sw, sh), 0)
    ImageDraw.Draw(mask).polygon(_poly((p[OVAL] + 0.5) / small - 0.5), fill=255)
    face_width = _frame(p)[3] / small
    soft = mask.filter(ImageFilter.GaussianBlur(max(1.0, 0.12 * face_width)))
    soft = np.asarray(soft.resize((width, height), Image.BILINEAR), dtype=np.float32) / 255
    sharp = Image.new("L", (SUPERSAMPLE * width, SUPERSAMPLE * height), 0)
    big = _supersampled(p[OVAL])
    ImageDraw.Draw(sharp).polygon(_poly(big), fill=255)
    inside = np.asarray(sharp.reduce(SUPERSAMPLE), dtype=np.float32) / 255
    return 1.0 - inside * strength * (1.0 - np.clip(2 * soft - 1, 0, 1))


@functools.cache
def _noise_tile() -> np.ndarray:
    """A fixed tile of standard normal noise (the same in every process)."""
    return np.random.default_rng(20240601).standard_normal((_TILE, _TILE, 3), dtype=np.float32)


def _noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Standard normal pixel noise (height, width, 3): a random window of the fixed tile."""
    tile = _noise_tile()
    if height > _TILE or width > _TILE:
        return rng.standard_normal((height, width, 3), dtype=np.float32)
    y, x = rng.integers(0, _TILE - height + 1), rng.integers(0, _TILE - width + 1)
    flip = rng.integers(4)
    window = tile[y : y + height, x : x + width]
    return window[:, ::-1] if flip == 1 else window[::-1] if flip == 2 else window


def render_face(
    rng: np.random.Generator,
    points: np.ndarray,
    width: int,
    height: int,
    behind: tuple[np.random.Generator, np.ndarray] | None = None,
) -> Image.Image:
    """An RGB image (width x height) of a face whose landmarks are `points` (971, 2), in pixels.

    A landmark at (x, y) lies at the centre of pixel column x, row y. `behind` is another face
    (a generator for its colours, its landmarks), drawn first so the subject covers it.
    """
    look = _appearance(rng)
    background = _background(rng, width, height)
    big = background.resize((width * SUPERSAMPLE, height * SUPERSAMPLE), Image.NEAREST)
    if behind is not None:
        behind_rng, behind_points = behind
        _draw_face(big, _supersampled(behind_points), _appearance(behind_rng))
    _draw_face(big, _supersampled(points), look)
    image = big.reduce(SUPERSAMPLE)
    blur = rng.uniform(0.0, 2.6)
    if blur > 1.8:
        image = image.filter(ImageFilter.GaussianBlur(blur - 1.4))
    shade = _face_shading(points, width, height, rng.uniform(0.15, 0.4))
    angle = rng.uniform(0, 2 * np.pi)
    xs = (np.arange(width, dtype=np.float32) / width - 0.5) * np.cos(angle)
    ys = (np.arange(height, dtype=np.float32) / height - 0.5) * np.sin(angle)
    shade *= 1.0 + np.float32(rng.uniform(0.1, 0.7)) * (xs[None, :] + ys[:, None])
    cast = (rng.normal(1.0, 0.05, 3) * rng.uniform(0.75, 1.2)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) * shade[..., None] * cast
    pixels += _noise(rng, height, width) * np.float32(rng.uniform(1.0, 8.0))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
