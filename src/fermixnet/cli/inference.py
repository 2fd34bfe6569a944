"""`fermixnet predict`, `fermixnet export` and `fermixnet explain`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports torch-heavy modules only when a command runs
    from fermixnet.inference.predictor import Predictor
    from fermixnet.inference.results import ImageResult


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the inference subcommands to the dispatcher."""
    p = subparsers.add_parser(
        "predict", help="predict expressions of the faces in images, folders and videos"
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image, folder (recursive) or video")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or an exported file")
    p.add_argument("--out", help="folder for results.json|csv and annotated files (else stdout)")
    p.add_argument("--format", choices=("json", "csv"), default="json", help="result format")
    p.add_argument(
        "--detector",
        default="auto",
        help="auto, yunet, dlib, dlib-cnn, mediapipe, haar, aligned/none (inputs are aligned face "
        "crops)",
    )
    p.add_argument("--backend", choices=("torch", "onnxruntime", "torchscript"), default="torch")
    p.add_argument(
        "--framing",
        help="crop faces as template, box:<margin> or as_given instead of the checkpoint's framing "
        "(the one its training data declared; docs/inference.md)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    p.add_argument("--batch-size", type=int, default=32, help="faces per forward pass")
    p.add_argument("--annotate", action="store_true", help="write annotated images/videos to --out")
    p.add_argument("--stride", type=int, default=1, help="video: process every N-th frame")
    p.add_argument(
        "--smooth",
        type=float,
        default=0.0,
        help="video: EMA weight of a face track's past probabilities, in [0, 1)",
    )
    p.set_defaults(func=run_predict)

    e = subparsers.add_parser("export", help="export a checkpoint to ONNX or TorchScript")
    e.add_argument("--checkpoint", required=True, help="checkpoint folder or model.safetensors")
    e.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    e.add_argument("--out", required=True, help="file to write (.onnx or .pt)")
    e.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="fail when the max abs difference to eager PyTorch exceeds this",
    )
    q = e.add_argument_group("int8 (ONNX Runtime static quantisation, docs/inference.md)")
    q.add_argument("--int8", action="store_true",
                   help="also write <out stem>.int8.onnx, calibrated on --calib-data")
    q.add_argument("--calib-data", nargs="+", metavar="SPEC",
                   help="faces to calibrate on and check with, as name:root[,key=value] specs")
    q.add_argument("--calib-split", default="train", help="split of --calib-data (default train)")
    q.add_argument("--calib-images", type=int, default=512, help="calibration images")
    q.add_argument("--check-images", type=int, default=512,
                   help="other images on which int8 must agree with fp32")
    q.add_argument("--min-agreement", type=float, default=0.99,
                   help="write the int8 file only if this share of predictions agrees with fp32")
    e.set_defaults(func=run_export)

    x = subparsers.add_parser("explain", help="Grad-CAM maps of the high- and mid-level branches")
    x.add_argument("image", help="image file")
    x.add_argument("--checkpoint", required=True, help="checkpoint folder or model.safetensors")
    x.add_argument("--out", required=True, help="folder for the PNG figures")
    x.add_argument("--detector", default="auto", help="face detector (see predict)")
    x.add_argument("--mix-with", help="second image: also explain their FERMix sample (Fig. 9)")
    x.add_argument("--region", default="upper", help="FERMix region for --mix-with")
    x.add_argument("--device", default="cpu", help="torch device")
    x.set_defaults(func=run_explain)


def _unique(folder: Path, source: str, used: set[Path], suffix: str) -> Path:
    """``folder/<stem><suffix>``, numbered when two inputs share a stem; the folder is created."""
    stem = Path(source).stem
    path, k = folder / f"{stem}{suffix}", 1
    while path in used:
        path, k = folder / f"{stem}_{k}{suffix}", k + 1
    used.add(path)
    folder.mkdir(parents=True, exist_ok=True)
    return path


def run_predict(args: argparse.Namespace) -> int:
    """Run `fermixnet predict`; returns the exit status."""
    from fermixnet.fileio import atomic_write
    from fermixnet.inference.images import collect_inputs, is_video
    from fermixnet.inference.predictor import Predictor
    from fermixnet.inference.results import results_to_csv, results_to_json

    if args.annotate and not args.out:
        raise ValueError("--annotate needs --out (the folder for annotated files)")
    if args.batch_size < 1 or args.stride < 1:
        raise ValueError(f"--batch-size and --stride must be >= 1, got {args.batch_size}, "
                         f"{args.stride}")
    if not 0.0 <= args.smooth < 1.0:
        raise ValueError(f"--smooth must be in [0, 1), got {args.smooth}")
    files = collect_inputs(args.inputs)
    predictor = Predictor.from_checkpoint(
        args.checkpoint,
        device=args.device,
        detector=args.detector,
        backend=args.backend,
        batch_size=args.batch_size,
        framing=args.framing,
    )
    out = Path(args.out) if args.out else None
    annotate_dir = out / "annotated" if args.annotate and out is not None else None
    used: set[Path] = set()
    images = [f for f in files if not is_video(f)]
    results = _predict_images(predictor, images, annotate_dir, used)
    for video in (f for f in files if is_video(f)):
        results.extend(_predict_video(predictor, video, args, annotate_dir, used))
    if args.format == "json":
        text = results_to_json(results)
    else:
        text = results_to_csv(results, predictor.classes)
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write(out / f"results.{args.format}", text.encode())
        n_faces = sum(len(r.faces) for r in results)
        print(f"{len(results)} inputs, {n_faces} faces -> {out / f'results.{args.format}'}")
    return 0


def _predict_images(
    predictor: Predictor, images: list[Path], annotate_dir: Path | None, used: set[Path]
) -> list[ImageResult]:
    """Predict image files; report skipped ones; write annotated copies when asked."""
    import numpy as np

    from fermixnet.inference.images import read_image
    from fermixnet.inference.results import annotate, save_image

    results = []
    for res in predictor.predict_files(images):
        results.append(res)
        if res.error:
            print(f"fermixnet predict: skipped {res.error}", file=sys.stderr)
        elif annotate_dir is not None:
            image = np.asarray(read_image(res.source, max_side=1 << 30)[0])  # original pixels
            save_image(annotate(image, res), _unique(annotate_dir, res.source, used, ".png"))
    return results


def _predict_video(
    predictor: Predictor,
    video: Path,
    args: argparse.Namespace,
    annotate_dir: Path | None,
    used: set[Path],
) -> list[ImageResult]:
    """Predict one video's frames; a video that cannot be read is reported and skipped."""
    from fermixnet.inference.results import ImageResult
    from fermixnet.inference.video import predict_video

    target = _unique(annotate_dir, str(video), used, ".mp4") if annotate_dir else None
    results: list[ImageResult] = []
    try:
        results.extend(predict_video(predictor, video, args.stride, args.smooth, target))
    except ValueError as err:
        print(f"fermixnet predict: skipped {err}", file=sys.stderr)
        results.append(ImageResult(str(video), 0, 0, error=str(err)))
    return results


def run_export(args: argparse.Namespace) -> int:
    """Run `fermixnet export`; prints the parity check and fails above --tolerance."""
    from fermixnet.inference.export import export_model
    from fermixnet.models.weights import load_checkpoint

    if args.int8 and (args.format != "onnx" or not args.calib_data):
        print("fermixnet export: --int8 needs --format onnx and --calib-data", file=sys.stderr)
        return 2
    model, meta = load_checkpoint(args.checkpoint, device="cpu")
    report = export_model(model, meta, args.out, fmt=args.format)
    print(
        f"exported {report.format} -> {report.path}; parity vs eager PyTorch on batch sizes "
        f"{', '.join(map(str, report.batch_sizes))}: max abs diff {report.max_abs_diff:.3g}"
    )
    if not report.max_abs_diff <= args.tolerance:
        print(f"fermixnet export: parity above --tolerance {args.tolerance}", file=sys.stderr)
        return 1
    return _export_int8(args, report.path, meta) if args.int8 else 0


def _export_int8(args: argparse.Namespace, fp32: Path, meta: dict) -> int:
    from fermixnet.data.joint import open_datasets
    from fermixnet.inference.quantize import export_int8

    data = open_datasets(args.calib_data, args.calib_split, int(meta["num_classes"]))
    out = fp32.with_suffix(".int8.onnx")
    q = export_int8(fp32, out, data, meta, calib_images=args.calib_images,
                    check_images=args.check_images, min_agreement=args.min_agreement)
    print(f"int8: {q.agreement:.1%} of {q.check_images} held-out faces predicted as by fp32 "
          f"(calibrated on {q.calib_images})")
    if not q.written:
        print(f"fermixnet export: int8 agreement below --min-agreement {args.min_agreement:.1%}; "
              f"{out} not written (use the fp32 file)", file=sys.stderr)
        return 1
    print(f"exported int8 -> {out}")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Run `fermixnet explain`; writes the Grad-CAM figures to --out."""
    from fermixnet.explain import explain_files

    for path in explain_files(
        args.image,
        args.checkpoint,
        args.out,
        detector=args.detector,
        mix_with=args.mix_with,
        region=args.region,
        device=args.device,
    ):
        print(path)
    return 0
