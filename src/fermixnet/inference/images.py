"""Reading inputs for inference: image files of any common kind, folders, and video files.

Every image reaches the detector as (H, W, 3) uint8 RGB, upright: EXIF orientation is applied,
grayscale/palette/RGBA/CMYK are converted, 16-bit and float images are scaled to 8 bits, and very
large images are shrunk (faces are detected and cropped from the shrunk copy, and boxes are
reported in the original image's pixels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
)
VIDEO_EXTS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg"})

# Larger images are shrunk to this longest side before detection (memory and detector speed).
MAX_SIDE = 4096


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file (by extension)."""
    return Path(path).suffix.lower() in VIDEO_EXTS


def collect_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into the list of files to process.

    Files given explicitly are kept whatever their extension (an unreadable one is reported
    later); inside folders only image and video extensions are taken.

    Raises:
        FileNotFoundError: an input does not exist.
    """
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                if sub.is_file() and sub.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS:
                    out.append(sub)
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(
                f"input {path} does not exist (expected an image, video or folder)"
            )
    return list(dict.fromkeys(out))  # a file named twice (or via its folder) runs once


def to_rgb_uint8(pil: Image.Image) -> np.ndarray:
    """Convert any PIL image (modes L, LA, P, RGBA, CMYK, I;16, I, F, ...) to (H, W, 3) uint8 RGB.

    Alpha is composited on black (the background of aligned crops); 16-bit and 32-bit integer
    images are scaled by their type's range, float images are taken as 0..1 when they fit in it.
    """
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(pil).astype(np.float64)
        if mode.startswith("I;16"):
            arr = arr / 65535.0
        elif mode == "I":
            arr = arr / (65535.0 if arr.max(initial=0) > 255 else 255.0)
        elif arr.max(initial=0) > 1.0:
            arr = arr / 255.0
        gray = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(pil.convert("RGB"))


def read_image(path: str | os.PathLike[str], max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """Read an image file as upright (H, W, 3) uint8 RGB.

    Args:
        path: image file.
        max_side: images whose longest side exceeds this are shrunk to it.

    Returns:
        ``(image, scale)`` where ``scale`` = original pixels per returned pixel (1.0 unless shrunk).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable image (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with Image.open(path) as pil:
            full_w, full_h = pil.size
            if pil.format == "JPEG" and max(full_w, full_h) > 2 * max_side:
                # Decode a huge JPEG at 1/2, 1/4 or 1/8 size directly (memory, speed).
                pil.draft("RGB", (max_side, max_side))
            pil.load()  # the first frame of animated GIF/TIFF/WebP
            factor = full_w / pil.size[0]
            pil = ImageOps.exif_transpose(pil) or pil
            image = to_rgb_uint8(pil)
    except (OSError, SyntaxError, Image.DecompressionBombError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    image, scale = shrink(image, max_side)
    return image, scale * factor


def shrink(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """Shrink ``image`` so its longest side is at most ``max_side``; returns it and the scale."""
    h, w = image.shape[:2]
    side = max(h, w)
    if side <= max_side:
        return image, 1.0
    scale = side / max_side
    size = (max(1, round(w / scale)), max(1, round(h / scale)))
    small = Image.fromarray(image).resize(size, Image.Resampling.BOX)
    return np.asarray(small), scale


def iter_video(
    path: str | os.PathLike[str], stride: int = 1
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, time_s, frame_rgb)`` for every ``stride``-th frame of a video.

    Needs OpenCV (``pip install 'fermixnet[faces]'``).

    Raises:
        ValueError: the file cannot be opened as a video, or ``stride`` < 1.
    """
    if stride < 1:
        raise ValueError(f"--stride must be >= 1, got {stride}")
    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: not a readable video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % stride == 0:
                ok, frame = cap.retrieve()
                if ok:
                    yield index, index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise ValueError(f"{path}: video has no readable frames")


def video_fps(path: str | os.PathLike[str]) -> float:
    """Frames per second of a video (25 when the container does not say)."""
    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 25.0)
    finally:
        cap.release()


def import_cv2():
    """Import OpenCV or explain which extra installs it."""
    try:
        import cv2
    except ImportError as err:
        raise ValueError(
            "video input needs OpenCV: pip install 'fermixnet[faces]' (opencv-python-headless)"
        ) from err
    return cv2
