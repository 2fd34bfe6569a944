"""Video prediction: every ``stride``-th frame, faces tracked by box overlap, probabilities
smoothed per track with an exponential moving average."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from fermixnet.inference.frames import BoxLike
from fermixnet.inference.images import import_cv2, iter_video, video_fps
from fermixnet.inference.predictor import Predictor
from fermixnet.inference.results import ImageResult, annotate


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    box: tuple[float, ...]
    probs: np.ndarray
    last_seen: int


@dataclass
class IoUTracker:
    """Greedy IoU matching of faces between processed frames, with EMA of probabilities.

    Attributes:
        smoothing: EMA weight of the past (0 = no smoothing; 0.6 keeps 60 % of the history).
        min_iou: overlap needed to continue a track.
        max_gap: processed frames a track survives unseen.
    """

    smoothing: float = 0.0
    min_iou: float = 0.3
    max_gap: int = 5
    tracks: dict[int, _Track] = field(default_factory=dict)
    _next_id: int = 0
    _step: int = 0

    def update(self, result: ImageResult, classes: tuple[str, ...]) -> None:
        """Give each face of ``result`` a track id and (if smoothing) its smoothed probabilities."""
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"--smooth must be in [0, 1), got {self.smoothing}")
        self._step += 1
        pairs = sorted(
            (
                (box_iou(f.box, t.box), i, tid)
                for i, f in enumerate(result.faces)
                for tid, t in self.tracks.items()
            ),
            reverse=True,
        )
        taken_faces: set[int] = set()
        taken_tracks: set[int] = set()
        for iou, i, tid in pairs:
            if iou < self.min_iou or i in taken_faces or tid in taken_tracks:
                continue
            taken_faces.add(i)
            taken_tracks.add(tid)
            self._continue(result.faces[i], tid, classes)
        for i, face in enumerate(result.faces):
            if i not in taken_faces:
                probs = np.array([face.probs[c] for c in classes])
                self.tracks[self._next_id] = _Track(face.box, probs, self._step)
                face.track_id = self._next_id
                self._next_id += 1
        self.tracks = {
            k: t for k, t in self.tracks.items() if self._step - t.last_seen <= self.max_gap
        }

    def _continue(self, face, tid: int, classes: tuple[str, ...]) -> None:
        track = self.tracks[tid]
        probs = np.array([face.probs[c] for c in classes])
        track.probs = self.smoothing * track.probs + (1.0 - self.smoothing) * probs
        track.box, track.last_seen = face.box, self._step
        face.track_id = tid
        if self.smoothing > 0:
            face.probs = {c: float(p) for c, p in zip(classes, track.probs, strict=True)}
            top = int(np.argmax(track.probs))
            face.label, face.score = classes[top], float(track.probs[top])


@dataclass
class LiveStream:
    """A live camera stream: frames in, one :class:`ImageResult` out per frame, faces tracked
    and their probabilities smoothed as ``fermixnet predict --smooth`` does for video files.

    Example::

        stream = LiveStream(predictor, smoothing=0.6, channels="bgr")
        ok, frame = cv2.VideoCapture(0).read()
        result = stream.push(frame)        # result.faces[i].track_id, .label, .probs

    Attributes:
        predictor: the predictor (its detector finds the faces unless boxes are given).
        smoothing: EMA weight of each track's past probabilities (0 turns smoothing off).
        channels: ``rgb``, or ``bgr`` for OpenCV's frames.
    """

    predictor: Predictor
    smoothing: float = 0.6
    channels: str = "rgb"
    tracker: IoUTracker = field(init=False)
    frames: int = field(default=0, init=False)
    _start: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")
        self.tracker = IoUTracker(smoothing=self.smoothing)

    def push(self, frame: np.ndarray, boxes: Sequence[BoxLike] | None = None) -> ImageResult:
        """The next frame's result: ``frame`` is its index in the stream, ``time`` the seconds
        since the first frame (monotonic clock)."""
        now = time.monotonic()
        if self.frames == 0:
            self._start = now
        result = self.predictor.predict_frame(
            frame, boxes, channels=self.channels, tracker=self.tracker
        )
        result.source, result.frame, result.time = "<live>", self.frames, now - self._start
        self.frames += 1
        return result


def predict_video(
    predictor: Predictor,
    path: str | os.PathLike[str],
    stride: int = 1,
    smoothing: float = 0.0,
    annotated_out: str | os.PathLike[str] | None = None,
) -> Iterator[ImageResult]:
    """Predict every ``stride``-th frame of a video, tracking faces across frames.

    Args:
        predictor: the predictor (its detector finds the faces).
        path: the video file.
        stride: process one frame in ``stride``.
        smoothing: EMA weight of each track's past probabilities (0 turns smoothing off).
        annotated_out: if given, an MP4 of the processed frames with boxes and labels.

    Yields:
        One :class:`ImageResult` per processed frame (``frame`` and ``time`` set).
    """
    tracker = IoUTracker(smoothing=smoothing)
    writer = None
    cv2 = import_cv2() if annotated_out is not None else None
    tmp = None
    try:
        for index, t, frame in iter_video(path, stride):
            result = predictor.predict(frame)
            result.source, result.frame, result.time = str(path), index, t
            tracker.update(result, predictor.classes)
            if cv2 is not None:
                if writer is None:
                    tmp = f"{annotated_out}.tmp.mp4"
                    fps = video_fps(path) / stride
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                drawn = np.asarray(annotate(frame, result))
                writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            yield result
    finally:
        if writer is not None:
            writer.release()
            os.replace(tmp, annotated_out)
