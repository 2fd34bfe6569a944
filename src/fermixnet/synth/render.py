"""Renderer of the synthetic faces: PIL drawing on a supersampled canvas, then numpy touch-up.

Geometry lives in *face coordinates*, mapped to canvas pixels with the face's pose by
`fermixnet.synth.canvas.Frame`. Expression changes are written as offsets proportional to AU
intensities (see `fermixnet.synth.faces`).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from fermixnet.synth.canvas import Frame, ellipse, mix, quad, shade
from fermixnet.synth.faces import AU_INDEX, HAIR_STYLES, Face


def _background(draw: ImageDraw.ImageDraw, size: int, face: Face, rng: np.random.Generator) -> None:
    draw.rectangle((0, 0, size, size), fill=face.scene["bg"])
    for _ in range(int(face.scene["clutter"])):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x, y = rng.uniform(-0.1, 1.1, size=2) * size
        w, h = rng.uniform(0.05, 0.45, size=2) * size
        kind = int(rng.integers(4))
        if kind == 0:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x, y, x + w, y + h), fill=colour)
        elif kind == 2:
            draw.line(
                (x, y, x + w * rng.choice([-1, 1]), y + h),
                fill=colour,
                width=max(1, int(size * rng.uniform(0.01, 0.05))),
            )
        else:
            pts = rng.uniform(-0.2, 0.2, size=(int(rng.integers(3, 6)), 2)) * size + (x, y)
            draw.polygon([tuple(p) for p in pts], fill=colour)


def _head(f: Frame, face: Face) -> float:
    """Hair behind, neck, shoulders, ears and face outline; returns the chin's y."""
    idt = face.ident
    fw, fh, jaw = idt["face_w"], idt["face_h"], idt["jaw"]
    skin, hair = idt["skin"], idt["hair"]
    style = HAIR_STYLES[idt["hair_style"]]
    if style in ("long", "side"):
        f.poly(
            np.concatenate(
                [
                    ellipse(0, -0.1, fw * 1.3, fh * 1.15, math.pi, 2 * math.pi),
                    [[fw * 1.35, 1.6], [-fw * 1.35, 1.6]],
                ]
            ),
            hair,
        )
    f.poly(np.array([[-0.4, 0.5], [0.4, 0.5], [0.45, 2.2], [-0.45, 2.2]]), shade(skin, 0.85))
    f.poly(ellipse(0, 2.5, 2.2, 0.95), idt["shirt"])
    for sign in (-1, 1):
        f.poly(ellipse(sign * fw * 0.97, -0.02, 0.12, 0.22, n=12), shade(skin, 0.92))
    chin = fh + 0.22 * face.au(26)
    t_up = np.linspace(math.pi, 2 * math.pi, 14)
    t_lo = np.linspace(0, math.pi, 16)
    narrow = 1 - (1 - jaw) * np.sin(t_lo) ** 1.5
    outline = np.concatenate(
        [
            np.stack([fw * np.cos(t_up), fh * 0.95 * np.sin(t_up)], axis=1),
            np.stack([fw * np.cos(t_lo) * narrow, chin * np.sin(t_lo)], axis=1),
        ]
    )
    f.poly(outline, skin)
    return chin


def _hair_front(f: Frame, face: Face) -> None:
    idt = face.ident
    style = HAIR_STYLES[idt["hair_style"]]
    if style == "bald":
        return
    fw, fh = idt["face_w"] * 1.06, idt["face_h"] * 1.05
    cap = ellipse(0, 0, fw, fh, math.pi, 2 * math.pi, n=18)
    x = np.linspace(fw, -fw, 12)
    # Hairline: where the forehead ends; a fringe comes down close to the brows.
    line_y = {"short": -0.7, "long": -0.68, "fringe": -0.55, "side": -0.62}[style]
    y = line_y + 0.35 * (np.abs(x) / fw) ** 3
    if style == "side":
        y = y + 0.18 * (x / fw)  # swept to one side
    hairline = np.stack([x, np.minimum(y, -0.05)], axis=1)
    f.poly(np.concatenate([cap, hairline]), idt["hair"])


def _brows(f: Frame, face: Face) -> None:
    idt = face.ident
    x = np.linspace(0.0, 1.0, 7)
    for side, sign in ((0, -1), (1, 1)):
        a1, a2, a4 = (face.au(n, side) for n in (1, 2, 4))
        rest = idt["rest_brow"]
        xi, xo = 0.12 - 0.04 * a4, 0.62
        yi = -0.33 - 0.17 * a1 + 0.11 * a4 + rest
        ym = -0.39 - idt["brow_arch"] - 0.07 * a1 - 0.1 * a2 + 0.08 * a4
        yo = -0.33 - 0.15 * a2 + 0.04 * a4 - 0.5 * rest
        xs = xi + (xo - xi) * x
        ys = quad(xs, xi, yi, ym, xo, yo)
        t = idt["brow_thick"] * (1.2 - 0.6 * x)
        top = np.stack([sign * xs, ys - t / 2], axis=1)
        bot = np.stack([sign * xs, ys + t / 2], axis=1)[::-1]
        f.poly(np.concatenate([top, bot]), shade(idt["hair"], 0.8))


def _lid_curves(w: float, hu: float, hl: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.clip(1 - (x / w) ** 2, 0, 1)
    return -hu * s**0.8, hl * s


def _eyes(f: Frame, face: Face) -> None:
    idt = face.ident
    skin, size = idt["skin"], idt["eye_size"]
    w = 0.15 * size
    x = np.linspace(-w, w, 11)
    for side, sign in ((0, -1), (1, 1)):
        a4, a5, a6, a7 = (face.au(n, side) for n in (4, 5, 6, 7))
        ex, ey = sign * idt["eye_sep"], -0.12 + 0.03 * a4
        hu = 0.075 * size * max(0.12, 1 + 1.0 * a5 - 0.5 * a7 - 0.3 * a6 - 0.2 * a4)
        hl = 0.045 * size * max(0.1, 1 - 0.75 * a6 - 0.6 * a7 + 0.3 * a5)
        up, lo = _lid_curves(w, hu, hl, x)
        f.poly(
            np.concatenate([np.stack([ex + x, ey + up], 1), np.stack([ex + x, ey + lo], 1)[::-1]]),
            (236, 232, 226),
        )
        for radius, colour in ((0.062 * size, idt["eye_colour"]), (0.028 * size, (10, 10, 10))):
            circle = ellipse(0, 0.005, radius, radius, n=14)
            u, low = _lid_curves(w, hu, hl, circle[:, 0])
            circle[:, 1] = np.clip(circle[:, 1], u, low)
            f.poly(circle + np.array([ex, ey]), colour)
        f.line(np.stack([ex + x, ey + up], 1), shade(skin, 0.3), 0.024)
        f.line(np.stack([ex + x, ey + lo], 1), shade(skin, 0.7), 0.012)
        f.line(np.stack([ex + x * 0.9, ey + up * 1.1 - 0.05], 1), shade(skin, 0.85), 0.012)
        if a6 > 0.1:  # crow's feet and the raised lower-lid bulge
            ox = ex + sign * (w + 0.03)
            for dy in (-0.04, 0.0, 0.04):
                f.line(
                    np.array([[ox, ey + dy], [ox + sign * 0.08, ey + 1.6 * dy]]),
                    shade(skin, 1 - 0.35 * a6),
                    0.012,
                )
            f.line(np.stack([ex + x * 0.8, ey + lo + 0.04], 1), shade(skin, 1 - 0.3 * a6), 0.014)


def _wrinkles(f: Frame, face: Face) -> None:
    """Forehead (AU1/AU2), glabella (AU4) and nose-bridge (AU9) wrinkles."""
    skin = face.ident["skin"]
    raise_ = max(face.au(1), face.au(2))
    if raise_ > 0.15:  # horizontal forehead wrinkles (AU1/AU2)
        for y in (-0.66, -0.76, -0.86):
            xs = np.linspace(-0.45, 0.45, 7)
            f.line(
                np.stack([xs, y + 0.03 * (xs / 0.45) ** 2], 1),
                shade(skin, 1 - 0.3 * raise_),
                0.014,
            )
    a4, a9 = face.au(4), face.au(9)
    if a4 > 0.15:  # vertical glabella lines (AU4)
        for sx in (-0.05, 0.05):
            f.line(np.array([[sx, -0.36], [sx * 0.8, -0.22]]), shade(skin, 1 - 0.4 * a4), 0.014)
    if a9 > 0.1:  # nose-bridge wrinkles (AU9)
        for y in (-0.09, -0.03, 0.03):
            f.line(
                np.array([[-0.09, y], [0.0, y + 0.015], [0.09, y]]),
                shade(skin, 1 - 0.45 * a9),
                0.014,
            )


def _nose_and_cheeks(f: Frame, face: Face, nose_y: float, mouth_y: float, mw: float) -> None:
    """Nose sides and nostrils (flared by AU9), nasolabial folds, cheeks (raised by AU6)."""
    skin = face.ident["skin"]
    flare = 1 + 0.5 * face.au(9)
    for sign in (-1, 1):
        f.line(
            np.array([[sign * 0.06, -0.05], [sign * 0.08, nose_y - 0.08]]),
            shade(skin, 0.85),
            0.016,
        )
        f.poly(ellipse(sign * 0.07, nose_y, 0.04 * flare, 0.022, n=10), shade(skin, 0.45))
        f.line(
            ellipse(sign * 0.1, nose_y - 0.02, 0.05 * flare, 0.05, -1.6, 1.6, n=8) * (1, 1),
            shade(skin, 0.75),
            0.012,
        )
        fold = max(0.15, face.au(12), face.au(10), face.au(9), 0.7 * face.au(6))
        f.line(
            np.array(
                [
                    [sign * 0.15, nose_y - 0.03],
                    [sign * (mw * 0.85 + 0.06), mouth_y - 0.02],
                    [sign * (mw + 0.06), mouth_y + 0.1],
                ]
            ),
            shade(skin, 1 - 0.35 * fold),
            0.014,
        )
    cheek_y = 0.2 - 0.1 * face.au(6)
    for sign in (-1, 1):
        blush = mix(skin, (220, 80, 80), 0.05 + 0.2 * face.au(6))
        f.poly(ellipse(sign * 0.52, cheek_y, 0.15, 0.1, n=12), blush)


def _mouth_shape(face: Face, mouth_y: float) -> dict:
    """Lip corners, inner and outer lip heights, from the mouth AUs (both sides)."""
    idt = face.ident
    corners = []
    for side in (0, 1):
        a12, a14, a15, a20, a23, a24 = (face.au(n, side) for n in (12, 14, 15, 20, 23, 24))
        a26 = face.au(26)
        half = idt["mouth_w"] * (
            1
            + 0.25 * a12
            + 0.4 * a20
            - 0.2 * a23
            - 0.12 * a24
            - 0.25 * a26 * (1 - a20)
            - 0.12 * a14
        )
        y = mouth_y - 0.13 * a12 - 0.04 * a14 + 0.12 * a15 + 0.02 * a20 - idt["rest_mouth"]
        corners.append((half, y))
    thin = 1 - 0.6 * face.au(23) - 0.35 * face.au(24)
    top_in = mouth_y - 0.045 * face.au(10) - 0.02 * face.au(17)
    opening = 0.03 * face.au(25) + 0.3 * face.au(26) + 0.03 * face.au(10)
    return {
        "xl": -corners[0][0],
        "yl": corners[0][1],
        "xr": corners[1][0],
        "yr": corners[1][1],
        "top_out": top_in - 0.05 * thin - 0.03 * face.au(10),
        "top_in": top_in,
        "bot_in": top_in + opening,
        "bot_out": top_in + opening + 0.06 * thin,
        "open": opening,
    }


def _mouth(f: Frame, face: Face, m: dict, chin: float) -> None:
    idt = face.ident
    skin = idt["skin"]
    x = np.linspace(m["xl"], m["xr"], 13)

    def curve(yc: float) -> np.ndarray:
        return quad(x, m["xl"], m["yl"], yc, m["xr"], m["yr"])

    top_out, top_in, bot_in, bot_out = (
        curve(m[k]) for k in ("top_out", "top_in", "bot_in", "bot_out")
    )
    bow = 0.012 * np.exp(-(((x - 0.0) / 0.04) ** 2))  # the cupid's bow dip of the upper lip
    f.poly(
        np.concatenate([np.stack([x, top_out + bow], 1), np.stack([x, bot_out], 1)[::-1]]),
        idt["lip"],
    )
    if m["open"] > 0.012:
        f.poly(
            np.concatenate([np.stack([x, top_in], 1), np.stack([x, bot_in], 1)[::-1]]), (45, 18, 22)
        )
        if m["open"] > 0.05:
            teeth = np.minimum(top_in + 0.045, bot_in)
            f.poly(
                np.concatenate([np.stack([x, top_in], 1), np.stack([x, teeth], 1)[::-1]]),
                (235, 232, 220),
            )
    else:
        f.line(np.stack([x, top_in], 1), shade(idt["lip"], 0.45), 0.018)
    a14 = face.aus[:, AU_INDEX[14]]  # dimples at the corners (AU14, per side)
    for side, (cx, cy) in enumerate(((m["xl"], m["yl"]), (m["xr"], m["yr"]))):
        if a14[side] > 0.15:
            sign = -1 if side == 0 else 1
            f.line(
                np.array([[cx + sign * 0.03, cy - 0.03], [cx + sign * 0.045, cy + 0.03]]),
                shade(skin, 1 - 0.45 * a14[side]),
                0.016,
            )
    a17 = face.au(17)
    if a17 > 0.15:  # chin boss bulge under the lower lip
        xs = np.linspace(-0.12, 0.12, 7)
        f.line(
            np.stack([xs, m["bot_out"] + 0.09 + 0.4 * xs**2], 1), shade(skin, 1 - 0.3 * a17), 0.014
        )


def _post(img: Image.Image, face: Face, rng: np.random.Generator) -> np.ndarray:
    """Blur, lighting (directional gradient, brightness, colour cast) and noise; uint8 HWC."""
    scene = face.scene
    if scene["blur"] > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(scene["blur"]))
    arr = np.asarray(img, dtype=np.float32)
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    d = scene["light_dir"]
    gain = scene["brightness"] * (1 + scene["light"] * (math.cos(d) * xx + math.sin(d) * yy))
    arr = arr * gain[..., None].astype(np.float32)
    arr *= np.array([scene["cast_r"], 1.0, scene["cast_b"]], dtype=np.float32)
    if scene["noise"] > 0:
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * scene["noise"]
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


def render_face(
    face: Face, size: int, rng: np.random.Generator, supersample: int = 2
) -> tuple[np.ndarray, dict[str, float]]:
    """Draw one face.

    Args:
        face: sampled parameters (`fermixnet.synth.faces.sample_face`).
        size: output side in pixels (square images).
        rng: generator for the background clutter and pixel noise.
        supersample: canvas scale factor for anti-aliasing.

    Returns:
        (image (size, size, 3) uint8 RGB, landmarks in fractions of the image side:
        ``eye_l_x/y`` (image-left eye), ``eye_r_x/y``, ``nose_x/y``, ``mouth_x/y``, ``chin_x/y``,
        ``brow_y`` (mid-brow level), ``mouth_l_x/y`` and ``mouth_r_x/y`` (the lip corners on the
        image's left and right), ``face_w`` (face width)). The five of
        `fermixnet.data.landmarks` (``eye_l, eye_r, nose, mouth_l, mouth_r``) are exact: the
        points the face was drawn from.
    """
    canvas = size * supersample
    img = Image.new("RGB", (canvas, canvas))
    draw = ImageDraw.Draw(img)
    f = Frame(draw, canvas, face)
    _background(draw, canvas, face, rng)
    chin = _head(f, face)
    nose_y = face.ident["nose_len"] - 0.04 * face.au(9) - 0.02 * face.au(10)
    mouth_y = nose_y + 0.3
    m = _mouth_shape(face, mouth_y)
    _wrinkles(f, face)
    _nose_and_cheeks(f, face, nose_y, mouth_y, max(-m["xl"], m["xr"]))
    _eyes(f, face)
    _brows(f, face)
    _mouth(f, face, m, chin)
    _hair_front(f, face)
    if supersample > 1:
        img = img.reduce(supersample)
    sep = face.ident["eye_sep"]
    points = np.array(
        [[-sep, -0.12], [sep, -0.12], [0, nose_y], [0, mouth_y], [0, chin], [0, -0.4],
         [m["xl"], m["yl"]], [m["xr"], m["yr"]]]
    )
    mapped = f.map(points) / canvas
    marks = {}
    names = ("eye_l", "eye_r", "nose", "mouth", "chin", "brow", "mouth_l", "mouth_r")
    for i, name in enumerate(names):
        marks[f"{name}_x"], marks[f"{name}_y"] = float(mapped[i, 0]), float(mapped[i, 1])
    marks["face_w"] = 2 * face.ident["face_w"] * f.unit / canvas
    return _post(img, face, rng), marks
