"""Predictor: photo -> faces -> aligned crops -> class probabilities, in batches.

Runs our checkpoint in eager PyTorch, or a file written by ``fermixnet export`` in ONNX Runtime
or TorchScript (:mod:`fermixnet.inference.backends`); the checkpoint's ``meta.json`` (or the
export's ``.meta.json`` sidecar) gives the classes, input size, mean/std and the framing of the
training faces (``framing``; older checkpoints: the alignment template ``align_template``, or
RAF-DB's), which :meth:`Predictor.crop` reproduces from any detector's landmarks. Camera frames
(:meth:`Predictor.predict_frames`) are checked by :mod:`fermixnet.inference.frames`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from fermixnet.framing import Framing, parse_framing
from fermixnet.inference.align import align_face, crop_box, frame_face
from fermixnet.inference.backends import (
    LogitsFn,
    load_backend,
    normalise_crops,
    predictor_options,
    torch_runner,
)
from fermixnet.inference.faces import Face, FaceDetector, create_detector
from fermixnet.inference.frames import (
    BoxLike,
    FrameTracker,
    available_cores,
    check_frames,
    faces_from_boxes,
)
from fermixnet.inference.images import MAX_SIDE, read_image, shrink
from fermixnet.inference.results import FaceResult, ImageResult
from fermixnet.models.contract import IMAGENET_MEAN, IMAGENET_STD


class Predictor:
    """Facial expression prediction for photos, folders and aligned crops.

    Args:
        logits_fn: maps normalised (B, 3, H, W) float32 crops to fused logits (B, K).
        classes: class names, in the model's output order.
        input_size: ``(height, width)`` of the model input.
        mean: per-channel normalisation mean (0..1 scale).
        std: per-channel normalisation std.
        detector: face detector (see :mod:`fermixnet.inference.faces`).
        template: alignment template (fractions of the crop side), None for RAF-DB style; used
            when ``framing`` is None or ``as_given`` (the behaviour of checkpoints without one).
        framing: how the training faces were framed (:mod:`fermixnet.framing`); faces are
            cropped the same way from their landmarks.
        batch_size: faces per forward pass.
        max_side: images with a longer side are shrunk to it for detection (boxes are still
            reported in original pixels).
    """

    def __init__(
        self,
        logits_fn: LogitsFn,
        classes: Sequence[str],
        input_size: tuple[int, int],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        detector: FaceDetector | None = None,
        template: np.ndarray | None = None,
        batch_size: int = 32,
        max_side: int = MAX_SIDE,
        framing: Framing | None = None,
    ) -> None:
        self.logits_fn, self.classes = logits_fn, tuple(classes)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
        self.detector = detector if detector is not None else create_detector("aligned")
        self.template, self.batch_size = template, max(1, int(batch_size))
        self.max_side = int(max_side)
        self.framing = framing
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        meta: dict[str, object],
        device: str | torch.device = "cpu",
        detector: str | FaceDetector = "auto",
        batch_size: int = 32,
    ) -> Predictor:
        """A predictor over a loaded model (`models.weights.load_checkpoint`'s model and meta)."""
        det = create_detector(detector) if isinstance(detector, str) else detector
        return cls(torch_runner(model, torch.device(device)), **predictor_options(meta),
                   detector=det, batch_size=batch_size)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        detector: str | FaceDetector = "auto",
        backend: str = "torch",
        batch_size: int = 32,
        framing: str | Framing | None = None,
    ) -> Predictor:
        """Load a checkpoint folder (``backend="torch"``) or an exported file.

        Args:
            path: checkpoint folder / ``model.safetensors`` for ``torch``; the ``.onnx`` or
                ``.pt`` file written by ``fermixnet export`` for the other backends.
            device: torch device (``onnxruntime`` uses CUDA when given ``cuda`` and available).
            detector: a detector or its name (``auto``, ``dlib``, ``haar``, ``aligned``, ...).
            backend: ``torch``, ``onnxruntime`` or ``torchscript``.
            batch_size: faces per forward pass.
            framing: overrides the checkpoint's framing (``box:0.1``, ``template``, ...).
        """
        fn, meta = load_backend(path, device, backend)
        det = create_detector(detector) if isinstance(detector, str) else detector
        options = predictor_options(meta)
        if framing is not None:
            try:
                options["framing"] = parse_framing(framing)
            except ValueError as err:
                raise ValueError(f"--framing: {err}") from None
        return cls(fn, **options, detector=det, batch_size=batch_size)

    # --- classification of crops -------------------------------------------------------------
    def classify(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities of aligned crops.

        Args:
            crops: (N, H, W, 3) uint8 RGB crops at the model's input size.

        Returns:
            (N, K) float32 probabilities (softmax of the fused logits).
        """
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (*self.input_size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 crops of shape (N, {self.input_size[0]}, {self.input_size[1]}, 3),"
                " "
                f"got {crops.dtype} {crops.shape}"
            )
        out = [self._forward(crops[i : i + self.batch_size])
               for i in range(0, len(crops), self.batch_size)]
        k = len(self.classes)
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)

    def _forward(self, crops: np.ndarray) -> np.ndarray:
        """Softmax of the fused logits of (N, H, W, 3) uint8 crops, in one forward pass."""
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        logits = self.logits_fn(normalise_crops(crops, self.mean, self.std)).astype(np.float64)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The model-sized crop of one face, framed like the training faces from its landmarks
        (a face without landmarks, from the ``aligned`` detector, is its box as is)."""
        if face.landmarks is None:
            return crop_box(image, face.box, self.input_size)
        if self.framing is None or self.framing.kind == "as_given":
            return align_face(image, face.landmarks, self.input_size, self.template)
        return frame_face(image, face.landmarks, self.framing, self.input_size)

    def predict_aligned(self, crops: Iterable[np.ndarray]) -> list[FaceResult]:
        """Predict already-aligned face crops of any size (each is resized to the input size)."""
        crops = [_as_rgb(np.asarray(c)) for c in crops]
        sized = [crop_box(c, (0, 0, c.shape[1], c.shape[0]), self.input_size) for c in crops]
        if not sized:
            return []
        probs = self.classify(np.stack(sized))
        return [
            self.face_result(
                Face((0.0, 0.0, float(c.shape[1]), float(c.shape[0])), None, 1.0), p, 1.0
            )
            for c, p in zip(crops, probs, strict=True)
        ]

    # --- images --------------------------------------------------------------------------------
    def predict(self, image: np.ndarray | str | os.PathLike[str]) -> ImageResult:
        """Predict every face of one image (array (H, W, 3) uint8 RGB, or a path).

        Raises:
            FileNotFoundError, ValueError: an unreadable path (use :meth:`predict_batch` or
                :meth:`predict_files` to report and skip instead).
        """
        return self.predict_batch([image])[0]

    def predict_batch(
        self, images: Sequence[np.ndarray | str | os.PathLike[str]]
    ) -> list[ImageResult]:
        """Predict several images, classifying all their faces in shared batches."""
        loaded = [self._load(item) for item in images]
        found = self.faces_and_crops([img for _, img, _ in loaded])
        detections = [faces for faces, _ in found]
        crops = [crop for _, image_crops in found for crop in image_crops]
        probs = self.classify(np.stack(crops)) if crops else np.zeros((0, len(self.classes)))
        results, k = [], 0
        for (source, img, scale), faces in zip(loaded, detections, strict=True):
            h, w = img.shape[:2]
            res = ImageResult(source, round(w * scale), round(h * scale))
            for face in faces:
                res.faces.append(self.face_result(face, probs[k], scale))
                k += 1
            results.append(res)
        return results

    # --- camera frames -------------------------------------------------------------------------
    def predict_frame(
        self,
        frame: np.ndarray,
        boxes: Sequence[BoxLike] | None = None,
        *,
        channels: str = "rgb",
        tracker: FrameTracker | None = None,
    ) -> ImageResult:
        """Predict every face of one camera frame (see :meth:`predict_frames`).

        Args:
            frame: (H, W, 3) uint8, RGB; pass ``channels="bgr"`` for OpenCV's frames.
            boxes: the faces' ``(x0, y0, x1, y1)`` boxes (or :class:`Face` detections) in the
                frame's pixels; given, the detector is skipped.
            channels: ``rgb`` or ``bgr``.
            tracker: e.g. :class:`fermixnet.inference.video.IoUTracker`: gives faces track ids
                and smooths their probabilities over successive calls.
        """
        per_frame = None if boxes is None else [boxes]
        return self.predict_frames([frame], per_frame, channels=channels, tracker=tracker)[0]

    def predict_frames(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        boxes: Sequence[Sequence[BoxLike]] | None = None,
        *,
        channels: str = "rgb",
        tracker: FrameTracker | None = None,
    ) -> list[ImageResult]:
        """Predict every face of a batch of camera frames; all their faces go through the
        model in ONE forward pass (``batch_size`` does not split it).

        Answers equal :meth:`predict`'s on the same pixels (frames larger than ``max_side`` are
        shrunk for detection, boxes are reported in the frame's pixels). Frames are not copied
        unless ``channels="bgr"``.

        Args:
            frames: (H, W, 3) uint8 arrays (or one (N, H, W, 3) array), RGB unless ``channels``
                says ``bgr`` (OpenCV's ``VideoCapture.read`` order).
            boxes: per frame, the caller's face boxes ``(x0, y0, x1, y1)`` (or :class:`Face`
                detections) in that frame's pixels; given, detection is skipped and each box is
                cropped like a box-only detector's face (template landmarks in the box).
            channels: ``rgb`` or ``bgr``.
            tracker: updated with each frame's result in order (track ids, smoothing).

        Returns:
            One :class:`ImageResult` per frame (``source`` is ``<frame>``).

        Raises:
            ValueError: a frame that is not (H, W, 3) uint8, an empty frame, ``boxes`` not one
                list per frame, or a box outside its frame; the message names the frame and box.
        """
        checked = check_frames(frames, channels)
        if boxes is not None and len(boxes) != len(checked):
            raise ValueError(f"boxes: expected one list of boxes per frame ({len(checked)}), "
                             f"got {len(boxes)}")
        if boxes is None:
            shrunk = [shrink(frame, self.max_side) for frame in checked]
            images, scales = [img for img, _ in shrunk], [scale for _, scale in shrunk]
            given = None
        else:
            images, scales = checked, [1.0] * len(checked)
            given = [faces_from_boxes(b, f.shape[1], f.shape[0], f"frame {i}")
                     for i, (f, b) in enumerate(zip(checked, boxes, strict=True))]
        found = self.faces_and_crops(images, given)
        crops = [crop for _, frame_crops in found for crop in frame_crops]
        probs = self._forward(np.stack(crops) if crops else np.zeros((0, 1, 1, 3), np.uint8))
        results, k = [], 0
        for frame, (faces, _), scale in zip(checked, found, scales, strict=True):
            res = ImageResult("<frame>", frame.shape[1], frame.shape[0])
            for face in faces:
                res.faces.append(self.face_result(face, probs[k], scale))
                k += 1
            if tracker is not None:
                tracker.update(res, self.classes)
            results.append(res)
        return results

    # --- detection and crops, on every core where the detector allows ------------------------
    def faces_and_crops(
        self, images: Sequence[np.ndarray], faces: Sequence[list[Face]] | None = None
    ) -> list[tuple[list[Face], list[np.ndarray]]]:
        """Each image's faces (detected, or ``faces`` as given) and their model-sized crops.

        A batch runs on a thread pool sized to the cores when the detector can detect in several
        threads at once (its ``concurrent`` attribute: YuNet through its library releases the
        GIL), or when the faces are given (cropping releases it too); the answers are the same
        as one image after another.
        """
        def one(i: int) -> tuple[list[Face], list[np.ndarray]]:
            found = self.detector.detect(images[i]) if faces is None else faces[i]
            return found, [self.crop(images[i], f) for f in found]

        parallel = faces is not None or getattr(self.detector, "concurrent", False)
        pool = self._thread_pool() if parallel and len(images) > 1 else None
        indices = range(len(images))
        return list(pool.map(one, indices)) if pool else [one(i) for i in indices]

    def _thread_pool(self) -> ThreadPoolExecutor | None:
        """The predictor's detection threads, one per core (None on one core), made once."""
        with self._pool_lock:
            if self._pool is None and available_cores() > 1:
                self._pool = ThreadPoolExecutor(available_cores(), "fermixnet-detect")
                weakref.finalize(self, self._pool.shutdown, wait=False)  # its threads end with it
            return self._pool

    def predict_files(
        self, paths: Iterable[str | os.PathLike[str]], chunk: int = 16
    ) -> Iterable[ImageResult]:
        """Predict image files in chunks; unreadable files yield a result with ``error`` set."""
        pending: list[str | os.PathLike[str]] = []
        for path in paths:
            pending.append(path)
            if len(pending) == chunk:
                yield from self._predict_chunk(pending)
                pending = []
        if pending:
            yield from self._predict_chunk(pending)

    def _predict_chunk(self, paths: list[str | os.PathLike[str]]) -> list[ImageResult]:
        good, bad = [], {}
        for p in paths:
            try:
                good.append((p, read_image(p, self.max_side)))
            except (ValueError, FileNotFoundError) as err:
                bad[str(p)] = ImageResult(str(p), 0, 0, error=str(err))
        done = iter(self.predict_batch([_Loaded(str(p), img, s) for p, (img, s) in good]))
        return [bad[str(p)] if str(p) in bad else next(done) for p in paths]

    def _load(self, item: object) -> tuple[str, np.ndarray, float]:
        if isinstance(item, _Loaded):
            return item.source, item.image, item.scale
        if isinstance(item, (str, os.PathLike)):
            image, scale = read_image(item, self.max_side)
            return str(item), image, scale
        image, scale = shrink(_as_rgb(np.asarray(item)), self.max_side)
        return "<array>", image, scale

    def face_result(self, face: Face, probs: np.ndarray, scale: float) -> FaceResult:
        """One face's result in `predict`'s schema.

        Args:
            face: the detection, in the pixels of the (possibly shrunk) image it was found in.
            probs: the class probabilities of that face, (K,), in `self.classes` order.
            scale: the factor from those pixels to the original image's (as `shrink` returns).

        Returns:
            The box and landmarks in original pixels, the probabilities by class name, the top
            class and its probability.
        """
        top = int(np.argmax(probs))
        lms = (
            None
            if face.landmarks is None
            else [(float(x) * scale, float(y) * scale) for x, y in face.landmarks]
        )
        return FaceResult(
            box=tuple(float(v) * scale for v in face.box),  # type: ignore[arg-type]
            landmarks=lms,
            detector_score=float(face.score),
            probs={c: float(p) for c, p in zip(self.classes, probs, strict=True)},
            label=self.classes[top],
            score=float(probs[top]),
        )


class _Loaded:
    """An image already read from disk (source name, pixels, scale to original pixels)."""

    __slots__ = ("image", "scale", "source")

    def __init__(self, source: str, image: np.ndarray, scale: float) -> None:
        self.source, self.image, self.scale = source, image, scale


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of uint8/uint16/float -> (H, W, 3) uint8."""
    from PIL import Image

    from fermixnet.inference.images import to_rgb_uint8

    a = np.asarray(image)
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ValueError(f"expected an image array of uint8, uint16 or float, got {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4)):
        return to_rgb_uint8(Image.fromarray(a))
    raise ValueError(f"expected an image array (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
