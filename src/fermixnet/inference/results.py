"""Typed inference results, their JSON/CSV writers and annotated images."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fermixnet.fileio import atomic_write


@dataclass
class FaceResult:
    """The prediction for one face.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in the original image's pixels.
        landmarks: five ``(x, y)`` landmarks in the original image's pixels, or None.
        detector_score: the detector's confidence.
        probs: class name -> probability (softmax of the fused logits); sums to 1.
        label: the most probable class.
        score: its probability.
        track_id: for video frames, the id of the face's track; else None.
    """

    box: tuple[float, float, float, float]
    landmarks: list[tuple[float, float]] | None
    detector_score: float
    probs: dict[str, float]
    label: str
    score: float
    track_id: int | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "landmarks": None
            if self.landmarks is None
            else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "detector_score": round(float(self.detector_score), 4),
            "label": self.label,
            "score": round(float(self.score), 6),
            "probs": {k: round(float(v), 6) for k, v in self.probs.items()},
            **({"track_id": self.track_id} if self.track_id is not None else {}),
        }


@dataclass
class ImageResult:
    """All faces of one image or video frame; ``faces`` is empty when none was found.

    Attributes:
        source: the file (or ``<array>`` for in-memory images).
        width: image width in pixels (0 when the file could not be read).
        height: image height in pixels.
        faces: one result per face, best detection first.
        frame: frame index for video input, else None.
        time: frame time in seconds for video input, else None.
        error: why the file was skipped, or None.
    """

    source: str
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    frame: int | None = None
    time: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        out: dict[str, object] = {"source": self.source, "width": self.width, "height": self.height}
        if self.frame is not None:
            out["frame"] = self.frame
            out["time"] = round(float(self.time or 0.0), 4)
        if self.error is not None:
            out["error"] = self.error
        out["faces"] = [f.to_dict() for f in self.faces]
        return out


def save_image(image: Image.Image, path: str | os.PathLike[str]) -> None:
    """Save a PIL image atomically; the format follows the file's suffix."""
    buf = io.BytesIO()
    image.save(buf, format=Image.registered_extensions()[Path(path).suffix.lower()])
    atomic_write(path, buf.getvalue())


def results_to_json(results: Sequence[ImageResult]) -> str:
    """All results as one JSON document ``{"results": [...]}``."""
    return json.dumps({"results": [r.to_dict() for r in results]}, indent=2) + "\n"


def results_to_csv(results: Sequence[ImageResult], classes: Sequence[str]) -> str:
    """One CSV row per face; an image without faces (or unreadable) gets one row with
    ``face`` empty (and ``error`` set when it was skipped)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["source", "frame", "time", "face", "track_id", "x0", "y0", "x1", "y1"]
    head += ["detector_score", "label", "score", *(f"p_{c}" for c in classes), "error"]
    writer.writerow(head)
    for r in results:
        base = [
            r.source,
            "" if r.frame is None else r.frame,
            "" if r.time is None else f"{r.time:.4f}",
        ]
        if not r.faces:
            writer.writerow(base + [""] * (len(head) - len(base) - 1) + [r.error or ""])
        for i, f in enumerate(r.faces):
            row = [*base, i, "" if f.track_id is None else f.track_id]
            row += [f"{v:.2f}" for v in f.box] + [
                f"{f.detector_score:.4f}",
                f.label,
                f"{f.score:.6f}",
            ]
            row += [f"{f.probs.get(c, 0.0):.6f}" for c in classes] + [""]
            writer.writerow(row)
    return buf.getvalue()


def annotate(image: np.ndarray, result: ImageResult) -> Image.Image:
    """Draw boxes, landmarks and ``label score`` of every face onto a copy of ``image``."""
    pil = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    width = max(1, round(max(pil.size) / 300))
    try:  # a scalable font (Pillow >= 10.1); the bitmap default otherwise
        font = ImageFont.load_default(size=max(10, max(pil.size) // 40))
    except TypeError:
        font = ImageFont.load_default()
    for face in result.faces:
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 0), width=width)
        for x, y in face.landmarks or []:
            draw.ellipse((x - width, y - width, x + width, y + width), fill=(255, 0, 0))
        text = f"{face.label} {face.score:.2f}"
        if face.track_id is not None:
            text = f"#{face.track_id} {text}"
        _, top, _, bottom = draw.textbbox((0, 0), text, font=font)
        tx, ty = x0, max(0.0, y0 - (bottom - top) - 4)
        draw.rectangle(draw.textbbox((tx, ty), text, font=font), fill=(0, 0, 0))
        draw.text((tx, ty), text, fill=(255, 255, 255), font=font)
    return pil
