"""Predictor: photo -> faces -> aligned crops -> class probabilities, in batches.

Runs our checkpoint in eager PyTorch, or a file written by ``fermixnet export`` in ONNX Runtime
or TorchScript; the checkpoint's ``meta.json`` (or the export's ``.meta.json`` sidecar) gives the
classes, input size, mean/std and the framing of the training faces (``framing``; older
checkpoints: the alignment template ``align_template``, or RAF-DB's), which :meth:`Predictor.crop`
reproduces from any detector's landmarks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from fermixnet.framing import Framing, parse_framing
from fermixnet.inference.align import align_face, crop_box, frame_face
from fermixnet.inference.faces import Face, FaceDetector, create_detector
from fermixnet.inference.frames import BoxLike, check_frames, faces_from_boxes
from fermixnet.inference.images import MAX_SIDE, read_image, shrink
from fermixnet.inference.results import FaceResult, ImageResult
from fermixnet.models.contract import DEFAULT_INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD


def normalise_crops(crops: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB crops -> (N, 3, H, W) float32 model input: scaled to [0, 1] and
    normalised with the checkpoint's mean/std, as the training step does on the device."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    x = crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "torchscript")

# A batch of normalised float32 crops (B, 3, H, W) -> fused logits (B, K) as numpy.
LogitsFn = Callable[[np.ndarray], np.ndarray]


class FrameTracker(Protocol):
    """Anything with ``update(result, classes)``, called once per frame in order
    (:class:`fermixnet.inference.video.IoUTracker`)."""

    def update(self, result: ImageResult, classes: tuple[str, ...]) -> None:
        """Set the faces' track ids (and smoothed probabilities) of the next frame."""
        ...


def sidecar_meta(path: str | os.PathLike[str]) -> dict[str, object]:
    """``meta.json`` written beside an exported model (``<file>.meta.json``)."""
    meta_path = Path(f"{path}.meta.json")
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} is missing: exported models are read with the metadata that "
            "`fermixnet export` writes beside them"
        )
    return json.loads(meta_path.read_text())


def _torch_runner(model: torch.nn.Module, device: torch.device) -> LogitsFn:
    model = model.eval().to(device, memory_format=torch.channels_last)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            out = model(t)
            logits = out.logits if hasattr(out, "logits") else out[0]
            return logits.float().cpu().numpy()

    return run


def _onnx_runner(path: str | os.PathLike[str], device: str) -> LogitsFn:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ValueError("--backend onnxruntime needs: pip install 'fermixnet[export]'") from err
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {input_name: x})[0]

    return run


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
        return cls(_torch_runner(model, torch.device(device)), **predictor_options(meta),
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
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown --backend {backend!r}; expected one of {', '.join(BACKENDS)}"
            )
        device = torch.device(device)
        if backend == "torch":
            from fermixnet.models.weights import load_checkpoint

            suffix = Path(path).suffix.lower()
            if suffix in (".onnx", ".pt", ".ts"):
                other = "onnxruntime" if suffix == ".onnx" else "torchscript"
                raise ValueError(f"--checkpoint {path} is an exported model: add --backend {other}")

            model, meta = load_checkpoint(str(path), device=str(device))
            fn = _torch_runner(model, device)
        else:
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"--checkpoint {path}: expected the file `fermixnet export` wrote"
                )
            meta = sidecar_meta(path)
            if backend == "onnxruntime":
                fn = _onnx_runner(path, str(device))
            else:
                fn = _torch_runner(torch.jit.load(str(path), map_location=device), device)
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
        detections = [self.detector.detect(img) for _, img, _ in loaded]
        crops = [
            self.crop(img, f)
            for (_, img, _), faces in zip(loaded, detections, strict=True)
            for f in faces
        ]
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
        found: list[tuple[np.ndarray, list[Face], float]] = []
        for i, frame in enumerate(checked):
            if boxes is None:
                img, scale = shrink(frame, self.max_side)
                found.append((img, self.detector.detect(img), scale))
            else:
                h, w = frame.shape[:2]
                found.append((frame, faces_from_boxes(boxes[i], w, h, f"frame {i}"), 1.0))
        crops = [self.crop(img, f) for img, faces, _ in found for f in faces]
        probs = self._forward(np.stack(crops) if crops else np.zeros((0, 1, 1, 3), np.uint8))
        results, k = [], 0
        for frame, (_, faces, scale) in zip(checked, found, strict=True):
            res = ImageResult("<frame>", frame.shape[1], frame.shape[0])
            for face in faces:
                res.faces.append(self.face_result(face, probs[k], scale))
                k += 1
            if tracker is not None:
                tracker.update(res, self.classes)
            results.append(res)
        return results

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


def predictor_options(meta: dict[str, object]) -> dict[str, object]:
    """Predictor arguments from checkpoint metadata (classes, input size, mean/std, template,
    framing); a checkpoint without ``framing`` gets None (the behaviour of earlier versions)."""
    from fermixnet.labels import class_names

    size = meta.get("input_size", DEFAULT_INPUT_SIZE)
    size = (
        (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[-1]))
    )
    classes = meta.get("classes") or class_names(int(meta["num_classes"]))
    template = meta.get("align_template")
    return {
        "classes": tuple(classes),
        "input_size": size,
        "mean": tuple(meta.get("mean") or IMAGENET_MEAN),
        "std": tuple(meta.get("std") or IMAGENET_STD),
        "template": None if template is None else np.asarray(template, dtype=np.float64),
        "framing": None if meta.get("framing") is None else Framing.from_meta(meta["framing"]),
    }
