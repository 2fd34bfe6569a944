"""One request's work: decode the upload, find faces, predict with both heads, occlude, predict.

The clean result is exactly ``fermixnet predict --format json``'s schema (``{"results": [...]}``,
built by the Predictor), with one key added per face: ``heads``, the high-level and mid-level
heads' own predictions beside the fused one (Sec. 3.4's decision fusion, made visible). With an
occluder, ``occlusion`` holds, per face, its new prediction, classified at the clean face's
detection so that the model, not the detector, is what changes, and (unless the caller leaves it
out, as the live view does between its requests for pictures) the occluded face as a PNG or JPEG
data URL. The clean and the occluded faces go through the model in one forward pass.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fermixnet.inference.backends import normalise_crops
from fermixnet.inference.faces import Face, box_landmarks
from fermixnet.inference.images import shrink, to_rgb_uint8
from fermixnet.inference.results import ImageResult
from fermixnet.serve.model import ServedModel
from fermixnet.synth.occlude import OCCLUDERS, OCCLUSION_TYPES, Landmarks, occlude

# Pixels of an upload's header size above which it is refused before decoding (decompression
# bombs: a small file that expands to gigabytes).
MAX_PIXELS = 40_000_000
# Occluded faces are returned with this longest side (PNG data URLs).
THUMB_SIDE = 192
# Share of the box added on each side around a face when drawing its occluder (hats, hair).
MARGIN = 0.3


class RequestError(ValueError):
    """Bad input from a request; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def occluder_choices() -> dict[str, tuple[str, str | None]]:
    """``?occluder=`` values: each type of ``data occlude`` (a random occluder of that type) and
    each realistic occluder by name (``mask``, ``sunglasses``, ``hand``, ...: its first type)."""
    out: dict[str, tuple[str, str | None]] = {t: (t, None) for t in OCCLUSION_TYPES}
    for kind, names in OCCLUDERS.items():
        for name in names:
            out.setdefault(name, (kind, name))
    return out


def check_occluder(occluder: str | None) -> None:
    """Raise RequestError 400 unless ``occluder`` is None or a key of :func:`occluder_choices`."""
    choices = occluder_choices()
    if occluder is not None and occluder not in choices:
        raise RequestError(400, f"unknown occluder {occluder!r}; expected one of "
                                f"{', '.join(choices)}")


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Upload bytes -> upright (H, W, 3) uint8 RGB, in memory.

    Raises:
        RequestError: 422 for empty, unreadable or truncated data; 413 above ``max_pixels``.
    """
    if not data:
        raise RequestError(422, "the upload is empty; expected an image file")
    try:
        with Image.open(io.BytesIO(data)) as pil:
            w, h = pil.size
            if w * h > max_pixels:
                raise RequestError(413, f"image of {w}x{h} pixels is over the limit of "
                                        f"{max_pixels} pixels")
            pil.load()  # the first frame of animations; raises on truncated data
            pil = ImageOps.exif_transpose(pil) or pil
            return to_rgb_uint8(pil)
    except RequestError:
        raise
    except UnidentifiedImageError as err:
        raise RequestError(422, "not a readable image (not a format Pillow reads: PNG, JPEG, "
                                "GIF, BMP, TIFF, WebP, ...)") from err
    except Image.DecompressionBombError as err:
        raise RequestError(413, f"image is over the pixel limit ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise RequestError(422, f"not a readable image ({err})") from err


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _classify(
    served: ServedModel, images: list[np.ndarray], faces: list[Face]
) -> list[np.ndarray]:
    """(fused, high, mid) probabilities (len(images) * N, K) of the faces' crops in each image
    (the clean frame, then its occluded copy), in one forward pass."""
    pred = served.predictor
    crops = np.stack([pred.crop(img, f) for img in images for f in faces])  # (M, H, W, 3)
    return [_softmax(o) for o in served.run_heads(normalise_crops(crops, pred.mean, pred.std))]


def _head(classes: tuple[str, ...], probs: np.ndarray) -> dict[str, object]:
    top = int(np.argmax(probs))
    return {
        "label": classes[top],
        "score": round(float(probs[top]), 6),
        "probs": {c: round(float(p), 6) for c, p in zip(classes, probs, strict=True)},
    }


def _heads(served: ServedModel, probs: list[np.ndarray], i: int) -> dict[str, object]:
    classes = served.predictor.classes
    if not served.has_mid:
        return {"high": _head(classes, probs[1][i])}
    return {"high": _head(classes, probs[1][i]), "mid": _head(classes, probs[2][i])}


def _region(face: Face, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = face.box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return (max(0, int(x0 - mx)), max(0, int(y0 - my)),
            min(shape[1], int(np.ceil(x1 + mx))), min(shape[0], int(np.ceil(y1 + my))))


def _data_url(image: np.ndarray, fmt: str = "png") -> str:
    """A thumbnail (longest side THUMB_SIDE) as a PNG or JPEG data URL."""
    pil = Image.fromarray(image)
    pil.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, format=fmt.upper(), **({"quality": 85} if fmt == "jpeg" else {}))
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def occlude_faces(
    image: np.ndarray, faces: list[Face], kind: str, occluder: str | None, seed: int
) -> tuple[np.ndarray, list[str]]:
    """Draw one occluder of ``kind`` on every face, following its landmarks.

    Face ``i`` draws from ``np.random.default_rng([seed, i])``, so answers are reproducible.

    Returns:
        The occluded copy of ``image`` and each face's occluder name.
    """
    out, names = image.copy(), []
    for i, face in enumerate(faces):
        x0, y0, x1, y1 = _region(face, image.shape, MARGIN)
        lm = face.landmarks if face.landmarks is not None else box_landmarks(face.box)
        lm = np.asarray(lm, dtype=np.float64) - np.array([x0, y0])
        marks = Landmarks(tuple(lm[0]), tuple(lm[1]), tuple(lm[3:5].mean(0)))
        rng = np.random.default_rng([seed, i])
        occ = occlude(np.ascontiguousarray(out[y0:y1, x0:x1]), kind, rng, marks, occluder)
        out[y0:y1, x0:x1] = occ.image
        names.append(occ.occluder)
    return out, names


def analyse(
    served: ServedModel,
    image: np.ndarray,
    occluder: str | None = None,
    seed: int = 0,
    images: str | None = "png",
    empty_ok: bool = False,
) -> dict[str, object]:
    """Predict every face of ``image``; with ``occluder``, also of its occluded copy.

    One request's work runs in one worker (:meth:`ServedModel.worker`): detection on that
    worker's detector, then one forward pass for the clean faces and their occluded copies.

    Args:
        served: the model.
        image: (H, W, 3) uint8 RGB.
        occluder: a key of :func:`occluder_choices`, or None.
        seed: seed of the occluders' shapes, sizes and colours.
        images: format of the occluded faces' thumbnails (``png`` or ``jpeg``), or None to
            leave them out (the live view asks for them only while its occlusion panel is on).
        empty_ok: answer a frame without faces with an empty ``faces`` list, not a 422.

    Raises:
        RequestError: 400 for an unknown occluder, 422 when no face is found (unless
            ``empty_ok``).
    """
    check_occluder(occluder)
    pred = served.predictor
    img, scale = shrink(image, pred.max_side)
    with served.worker() as detector:
        faces = detector.detect(img)
        if not faces and not empty_ok:
            raise RequestError(422, "no face found in the image")
        kind, name = occluder_choices()[occluder] if occluder is not None else ("", None)
        occ_img, names = img, []
        if occluder is not None and faces:
            occ_img, names = occlude_faces(img, faces, kind, name, seed)
        probs = _classify(served, [img, occ_img] if names else [img], faces) if faces else []
    result = ImageResult("<upload>", image.shape[1], image.shape[0])
    face_dicts = []
    for i, face in enumerate(faces):
        # The Predictor's own result builder: boxes in original pixels, predict's schema.
        d = pred.face_result(face, probs[0][i], scale).to_dict()
        face_dicts.append({**d, "heads": _heads(served, probs, i)})
    out: dict[str, object] = {"results": [{**result.to_dict(), "faces": face_dicts}]}
    if occluder is not None:
        n = len(faces)
        occ_probs = [p[n:] for p in probs]
        out["occlusion"] = _occluded(served, occ_img, faces, occ_probs, names, kind, seed, images)
    return out


def _occluded(
    served: ServedModel,
    occ_img: np.ndarray,
    faces: list[Face],
    probs: list[np.ndarray],
    names: list[str],
    kind: str,
    seed: int,
    images: str | None,
) -> dict[str, object]:
    classes = served.predictor.classes
    faces_out: list[Mapping[str, object]] = []
    for i, face in enumerate(faces):
        entry = {**_head(classes, probs[0][i]), "occluder": names[i],
                 "heads": _heads(served, probs, i)}
        if images is not None:
            x0, y0, x1, y1 = _region(face, occ_img.shape, 0.1)
            entry["image"] = _data_url(occ_img[y0:y1, x0:x1], images)
        faces_out.append(entry)
    return {"type": kind, "seed": seed, "faces": faces_out}
