"""The face-detection contract shared by every backend: :class:`Face`, :class:`FaceDetector` and
the input check :func:`check_image` (re-exported by :mod:`fermixnet.inference.faces`, which holds
the registry and most backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixels of the image given to the detector.

    Attributes:
        box: ``(x0, y0, x1, y1)``.
        landmarks: (5, 2) float array in fermixnet's order, or None (use the box, no alignment).
        score: detector confidence (backend-specific scale; 1.0 when the backend gives none).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    score: float


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with ``detect(image) -> list[Face]`` on (H, W, 3) uint8 RGB images.

    A detector whose one instance may detect in several threads at once, releasing the GIL,
    says so with ``concurrent = True``; the Predictor then detects a batch's images on every
    core (:meth:`fermixnet.inference.predictor.Predictor.faces_and_crops`).
    """

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image``, best first."""
        ...


def check_image(image: object, who: str = "face detector") -> np.ndarray:
    """``image`` as a C-contiguous (H, W, 3) uint8 RGB array, or a ValueError saying what it got.

    Args:
        image: what was given to a detector.
        who: names the caller in the message.

    Raises:
        ValueError: not a numpy array, not uint8, not (H, W, 3), or empty.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{who}: expected an (H, W, 3) uint8 RGB numpy array, got "
                         f"{type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{who}: expected dtype uint8 (0-255 RGB), got {image.dtype} with shape "
                         f"{image.shape}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{who}: expected shape (H, W, 3) RGB, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{who}: the image is empty (shape {image.shape})")
    return np.ascontiguousarray(image)
