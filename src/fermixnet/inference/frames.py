"""Camera frames for the frame API (:meth:`Predictor.predict_frames`): checks of the frames and of
the caller's face boxes, whose errors say what was expected.

A frame is an (H, W, 3) uint8 numpy array, RGB by default; ``channels="bgr"`` takes OpenCV's
order (``cv2.VideoCapture.read``) and flips it here, so callers need no ``cvtColor``. Caller's
boxes skip detection: each becomes a :class:`Face` whose five landmarks are the template placed in
the box (:func:`fermixnet.inference.faces.box_landmarks`, what a box-only detector such as Haar
gives), so it is cropped with the checkpoint's framing like a detected face.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fermixnet.inference.faces import Face, box_landmarks
from fermixnet.inference.results import ImageResult

CHANNELS: tuple[str, ...] = ("rgb", "bgr")

# One face box: (x0, y0, x1, y1) in the frame's pixels, or a detection.
BoxLike = Sequence[float] | Face


class FrameTracker(Protocol):
    """Anything with ``update(result, classes)``, called once per frame in order
    (:class:`fermixnet.inference.video.IoUTracker`)."""

    def update(self, result: ImageResult, classes: tuple[str, ...]) -> None:
        """Set the faces' track ids (and smoothed probabilities) of the next frame."""
        ...


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_channels(channels: str) -> str:
    """``channels`` lower-cased, or ValueError unless it is ``rgb`` or ``bgr``."""
    name = str(channels).lower()
    if name not in CHANNELS:
        raise ValueError(f"channels: expected 'rgb' or 'bgr', got {channels!r}")
    return name


def check_frame(frame: object, where: str = "frame", channels: str = "rgb") -> np.ndarray:
    """A camera frame as a contiguous (H, W, 3) uint8 RGB array.

    Args:
        frame: (H, W, 3) uint8 array in ``channels`` order.
        where: how errors name the frame (``frame 3``).
        channels: ``rgb``, or ``bgr`` (OpenCV's order, flipped here).

    Raises:
        ValueError: not a numpy array, not uint8, not three channels, or an empty frame.
    """
    channels = check_channels(channels)
    want = f"an (H, W, 3) uint8 {channels.upper()} numpy array"
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{where}: expected {want}, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        hint = "; scale floats to 0..255 and cast: (x * 255).astype(np.uint8)" \
            if frame.dtype.kind == "f" else ""
        raise ValueError(f"{where}: expected {want}, got dtype {frame.dtype}{hint}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = ""
        if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            hint = "; grey frames: np.repeat(frame.reshape(h, w, 1), 3, axis=2)"
        elif frame.ndim == 3 and frame.shape[2] == 4:
            hint = "; drop the alpha channel: frame[..., :3]"
        raise ValueError(f"{where}: expected {want}, got shape {frame.shape}{hint}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"{where}: empty frame of shape {frame.shape}; expected {want}")
    if channels == "bgr":
        frame = frame[..., ::-1]
    return np.ascontiguousarray(frame)


def check_frames(frames: object, channels: str = "rgb") -> list[np.ndarray]:
    """A sequence of frames (or one (N, H, W, 3) array) checked by :func:`check_frame`."""
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        raise ValueError(f"frames: expected a list of frames or an (N, H, W, 3) array, got one "
                         f"array of shape {frames.shape} (use predict_frame for one frame)")
    if isinstance(frames, (str, bytes)) or not hasattr(frames, "__len__"):
        raise ValueError(f"frames: expected a list of (H, W, 3) uint8 arrays, got "
                         f"{type(frames).__name__}")
    return [check_frame(f, f"frame {i}", channels) for i, f in enumerate(frames)]  # type: ignore


def faces_from_boxes(boxes: Sequence[BoxLike], width: int, height: int,
                     where: str = "frame") -> list[Face]:
    """The caller's boxes of one frame as faces to crop (detection skipped).

    Args:
        boxes: ``(x0, y0, x1, y1)`` boxes in the frame's pixels, or :class:`Face` detections
            (kept as given, landmarks included).
        width: frame width.
        height: frame height.
        where: how errors name the frame.

    Raises:
        ValueError: a box that is not four finite numbers with ``0 <= x0 < x1 <= width`` and
            ``0 <= y0 < y1 <= height``.
    """
    if isinstance(boxes, np.ndarray) and boxes.ndim == 1 and len(boxes) == 4:
        boxes = [boxes]  # type: ignore[list-item]
    faces = []
    for i, item in enumerate(boxes):
        box = item.box if isinstance(item, Face) else item
        try:
            x0, y0, x1, y1 = (float(v) for v in box)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"{where}, box {i}: expected (x0, y0, x1, y1), got {box!r}") from None
        if not all(map(math.isfinite, (x0, y0, x1, y1))):
            raise ValueError(f"{where}, box {i}: {box!r} is not finite")
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(
                f"{where}, box {i}: ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the "
                f"{width}x{height} frame; expected 0 <= x0 < x1 <= {width} and "
                f"0 <= y0 < y1 <= {height} (clip it to the frame)"
            )
        if isinstance(item, Face):
            faces.append(item)
        else:
            faces.append(Face((x0, y0, x1, y1), box_landmarks((x0, y0, x1, y1)), 1.0))
    return faces
