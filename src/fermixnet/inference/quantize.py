"""int8 ONNX export: static quantisation with ONNX Runtime, checked against the fp32 model.

ONNX Runtime's own quantiser (``onnxruntime.quantization``) is used rather than torch's
(``torch.ao``): the int8 model is meant for ONNX Runtime, whose x86 kernels (VNNI) run the QDQ
layout with per-channel int8 weights and uint8 activations fastest (2.8-3.1x fp32 ONNX on the
benchmark CPU, ``docs/benchmarks.md``). Calibration reads a few hundred faces of a data set;
agreement with fp32 is measured on other faces of the same set, and the file is only written
when it reaches ``min_agreement``: int8 holds accuracy when the model's margins are large and
loses it when they are not, so it is checked every time rather than assumed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fermixnet.inference.export import write_sidecar


@dataclass(frozen=True)
class Int8Report:
    """What :func:`export_int8` measured.

    Attributes:
        path: the int8 file (written only when ``agreement >= min_agreement``).
        written: whether it was written.
        agreement: share of check images whose int8 prediction equals the fp32 one.
        calib_images: images the activation ranges were calibrated on.
        check_images: other images the agreement was measured on.
    """

    path: Path
    written: bool
    agreement: float
    calib_images: int
    check_images: int


def ort_session(path: str | os.PathLike[str], threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations and ``threads`` intra-op threads
    (default: torch's thread count, so both runtimes use the same cores)."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _CalibrationReader:
    """Feeds calibration images to ONNX Runtime's calibrator in batches."""

    def __init__(self, images: np.ndarray, input_name: str, batch: int) -> None:
        self._batches: Iterator[np.ndarray] = iter(
            [images[i : i + batch] for i in range(0, len(images), batch)]
        )
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:  # the calibrator reads the data once; nothing to rewind
        return None


def quantize_int8(
    onnx_path: str | os.PathLike[str],
    calib_images: np.ndarray,
    out_path: str | os.PathLike[str],
    batch: int = 32,
) -> Path:
    """Static int8 quantisation of an fp32 ONNX classifier.

    QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration.

    Args:
        onnx_path: the fp32 model (one image input).
        calib_images: (N, 3, H, W) float32, normalised as the model expects; a few hundred
            representative faces.
        out_path: where to write the int8 model (atomically).
        batch: calibration batch size.

    Returns:
        ``out_path``.

    Raises:
        ValueError: ``calib_images`` is not a float32 (N, 3, H, W) array with N >= 1.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calib = np.ascontiguousarray(calib_images, dtype=np.float32)
    if calib.ndim != 4 or calib.shape[1] != 3 or len(calib) == 0:
        raise ValueError(f"calib_images: expected float32 (N, 3, H, W), got {calib.shape}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # ONNX shape inference + fp32 fusions (the symbolic pass fails on the exporter's Reshape).
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        input_name = ort_session(pre, threads=1).get_inputs()[0].name
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre), str(staged), _CalibrationReader(calib, input_name, batch),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        os.replace(staged, out_path)
    return out_path


def predict_onnx(path: str | os.PathLike[str], images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Predicted class (argmax of the first output) of every image, in batches."""
    session = ort_session(path)
    name = session.get_inputs()[0].name
    preds = [
        session.run(None, {name: images[i : i + batch]})[0].argmax(1)
        for i in range(0, len(images), batch)
    ]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def export_int8(
    fp32_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    dataset,
    meta: dict[str, object],
    *,
    calib_images: int = 512,
    check_images: int = 512,
    min_agreement: float = 0.99,
    seed: int = 0,
) -> Int8Report:
    """Quantise an exported fp32 ONNX file and keep it only if it agrees with fp32.

    Args:
        fp32_path: the fp32 file written by :func:`fermixnet.inference.export.export_model`.
        out: the int8 file to write.
        dataset: a :class:`fermixnet.data.base.FERDataset` of face crops like the training ones
            (e.g. the training split): calibration and check images are drawn from it without
            overlap, in a seeded random order.
        meta: the checkpoint metadata (input size, mean, std).
        calib_images: number of calibration images.
        check_images: number of images the agreement is measured on.
        min_agreement: the file is written only when int8 and fp32 agree on this share.
        seed: seed of the draw.

    Raises:
        ValueError: the data set has fewer than ``calib_images + check_images`` images.
    """
    from fermixnet.data.imageio import resize_rgb
    from fermixnet.inference.backends import normalise_crops, predictor_options

    need = calib_images + check_images
    if calib_images < 1 or check_images < 1 or len(dataset) < need:
        raise ValueError(
            f"int8 calibration data {dataset!r}: needs {calib_images} calibration + "
            f"{check_images} check images (both >= 1), the data set has {len(dataset)}"
        )
    opts = predictor_options(meta)
    order = np.random.default_rng(seed).permutation(len(dataset))[:need]
    # Resized as the training cache resizes (bilinear), normalised as `Predictor.classify` does.
    faces = np.stack([resize_rgb(dataset.load(int(i)), opts["input_size"]) for i in order])
    x = normalise_crops(faces, opts["mean"], opts["std"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".int8-") as tmp:
        staged = quantize_int8(fp32_path, x[:calib_images], Path(tmp) / out.name)
        check = x[calib_images:]
        agreement = float((predict_onnx(staged, check) == predict_onnx(fp32_path, check)).mean())
        written = agreement >= min_agreement
        if written:
            write_sidecar(out, meta, export_format="onnx",
                          int8={"agreement_with_fp32": agreement, "calib_images": calib_images,
                                "check_images": check_images, "seed": seed})
            os.replace(staged, out)
    return Int8Report(out, written, agreement, calib_images, check_images)
