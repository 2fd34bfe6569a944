"""Five-point face alignment: a least-squares similarity transform to a fixed template.

Landmark order everywhere in fermixnet (the order of RetinaFace/ArcFace tools), in image pixels
``(x, y)``: eye on the image's left (the subject's right eye), eye on the image's right, nose tip,
mouth corner on the image's left, mouth corner on the image's right.

The template (:data:`RAFDB_TEMPLATE`, defined in :mod:`fermixnet.framing`) places these points
as fractions of the crop's side, chosen to frame faces like RAF-DB's aligned 100x100 crops (the
images FER models are trained on): the whole face from the eyebrows to the chin fills the square,
eyes a little above the middle. RAF-DB does not publish its template; these numbers are our
estimate, so a checkpoint may carry its own template in ``meta.json`` (key ``align_template``, or
a ``framing`` with its own template), which then wins. :func:`frame_face` crops a face the way
a checkpoint's training data was framed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from fermixnet.framing import RAFDB_TEMPLATE, Framing


def template_points(size: int | Sequence[int], template: np.ndarray | None = None) -> np.ndarray:
    """Template landmarks in pixels of a crop of ``size`` (an int, or ``(height, width)``)."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    t = RAFDB_TEMPLATE if template is None else np.asarray(template, dtype=np.float64)
    if t.shape != (5, 2):
        raise ValueError(f"alignment template must have shape (5, 2), got {t.shape}")
    return t * np.array([w, h], dtype=np.float64)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama's closed form (Umeyama 1991, Eqs. 34-43), without reflections.

    Args:
        src: (N, 2) points, N >= 2.
        dst: (N, 2) points.

    Returns:
        (2, 3) matrix ``M`` with ``dst ≈ src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(
            f"expected two (N, 2) point arrays with N >= 2, got {src.shape}, {dst.shape}"
        )
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("landmarks coincide; cannot estimate an alignment")
    cov = d_c.T @ s_c / len(src)  # (2, 2)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # keep a rotation, never a reflection
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def apply_similarity(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) transform to (N, 2) points."""
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def warp_affine(image: np.ndarray, m: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Warp ``image`` (H, W, 3) uint8 with the forward transform ``m`` into a crop of ``size``.

    Pixels outside the source are black, as in RAF-DB's aligned crops. Uses PIL (bilinear) so
    the core install needs no OpenCV. Only the part of the image that the crop samples (with a
    2-pixel border for the bilinear kernel) is handed to PIL, so a face in a large frame costs
    what the face costs; the crop is the same as from the whole image.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)  # PIL wants output -> input coordinates
    corners = apply_similarity(inv[:2], np.array([[-0.5, -0.5], [w, -0.5], [w, h], [-0.5, h]]))
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 2, 0, None)
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
    x1, y1 = min(int(x1), image.shape[1]), min(int(y1), image.shape[0])
    if x0 >= x1 or y0 >= y1:  # the crop lies wholly outside the image
        return np.zeros((h, w, 3), np.uint8)
    image = image[y0:y1, x0:x1]
    inv = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ inv  # into the part's pixels
    # Landmarks use pixel indices (a pixel's centre is its index); PIL's continuous coordinates
    # put that centre at index + 0.5, hence the half-pixel shifts on both sides.
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    inv = shift @ inv @ unshift
    coeffs = tuple(inv[:2].reshape(-1))
    pil = Image.fromarray(image)
    out = pil.transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int | Sequence[int],
    template: np.ndarray | None = None,
) -> np.ndarray:
    """Crop and align one face: five landmarks onto the template, at the model's input size.

    Args:
        image: (H, W, 3) uint8 RGB image.
        landmarks: (5, 2) landmarks in image pixels, in fermixnet's order (module docstring).
        size: crop size, an int or ``(height, width)``.
        template: (5, 2) template as fractions of the crop side; default :data:`RAFDB_TEMPLATE`.

    Returns:
        (h, w, 3) uint8 aligned crop.
    """
    dst = template_points(size, template)
    m = estimate_similarity(np.asarray(landmarks, dtype=np.float64).reshape(5, 2), dst)
    return warp_affine(image, m, size)


def _fit_scale_shift(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares uniform scale and translation (no rotation) mapping ``src`` to ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = (s_c**2).sum()
    if var_s <= 1e-12:
        raise ValueError("landmarks coincide; cannot place a face box")
    scale = (s_c * d_c).sum() / var_s
    return np.array(
        [[scale, 0.0, mu_d[0] - scale * mu_s[0]], [0.0, scale, mu_d[1] - scale * mu_s[1]]]
    )


def framing_transform(
    landmarks: np.ndarray, framing: Framing, size: int | Sequence[int]
) -> np.ndarray:
    """(2, 3) transform from image pixels to a crop framed like the training data.

    A ``template`` framing is a similarity (rotation included) onto the framing's points; a
    ``box`` framing is an upright square: scale and shift only, so the crop is the face box
    (fitted to the five landmarks) grown by the framing's margin.

    Args:
        landmarks: (5, 2) landmarks in image pixels, in fermixnet's order.
        framing: the checkpoint's framing (``as_given`` is treated as a RAF-DB template).
        size: crop size, an int or ``(height, width)``.
    """
    src = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    dst = template_points(size, framing.points())
    return _fit_scale_shift(src, dst) if framing.upright else estimate_similarity(src, dst)


def crop_corners(m: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """(4, 2) image-pixel corners (top-left, top-right, bottom-right, bottom-left) of the crop
    that the transform ``m`` makes at ``size``: where a framed crop was taken from."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64) - 0.5
    full = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))
    return apply_similarity(full[:2], corners)


def frame_face(
    image: np.ndarray, landmarks: np.ndarray, framing: Framing, size: int | Sequence[int]
) -> np.ndarray:
    """Crop one face as the training data framed theirs (see :mod:`fermixnet.framing`).

    Args:
        image: (H, W, 3) uint8 RGB image.
        landmarks: (5, 2) landmarks in image pixels (from any detector).
        framing: the checkpoint's framing.
        size: crop size, an int or ``(height, width)``.

    Returns:
        (h, w, 3) uint8 crop; pixels outside the image are black.
    """
    return warp_affine(image, framing_transform(landmarks, framing, size), size)


def crop_box(
    image: np.ndarray, box: Sequence[float], size: int | Sequence[int], margin: float = 0.0
) -> np.ndarray:
    """Crop a box (``x0, y0, x1, y1``), grown by ``margin`` of its side, resized to ``size``.

    Used for faces without landmarks and for already-aligned crops.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    x0, y0, x1, y1 = (float(v) for v in box)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    extent = (x0 - dx, y0 - dy, x1 + dx, y1 + dy)  # may leave the image: filled with black
    pil = Image.fromarray(image)
    out = pil.transform((w, h), Image.Transform.EXTENT, extent, resample=Image.Resampling.BILINEAR)
    return np.asarray(out)
