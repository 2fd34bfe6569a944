"""The frame API at video rate: frames/s and faces/s through ``Predictor.predict_frame(s)``, and
where one live frame's time goes.

A 640x480 clip is generated here: one synthetic face (``fermixnet.synth.generate``, 160 px) or
four (2x2, 112 px; samples the Haar detector finds) gliding over a smooth gradient, 4 px a
frame. A freshly saved ResNet-18 FERMixNet (``--size`` px, random weights: speed does not
depend on them) runs in each backend (eager PyTorch, ONNX Runtime fp32 and int8; the int8 file
calibrated on 64 synthetic faces), with ``--detector`` (default ``auto``) and with the caller's
boxes (the generator's, detection skipped). Measured, over ``--frames`` frames after a warm-up:

- ``predict``: the per-image path one frame at a time (what ``fermixnet predict`` does per video
  frame): the "before";
- ``frame``: ``predict_frame`` one frame at a time (a live camera);
- ``frames xB``: ``predict_frames`` on batches of ``--batch`` frames (one forward per batch);
- ``boxes xB``: the same with the caller's boxes.

Then the share of time per stage of one ``/api/frame`` request (in-process, one face, the served
model's path): decode (the JPEG), detect, align (crops), forward (both heads), encode (the
answer's dict and its JSON).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from serve_bench import write_models

from common import base_parser, finish, setup

W, H = 640, 480


def clip(frames: int, faces: int) -> tuple[list[np.ndarray], list[list[tuple[float, ...]]]]:
    """``frames`` RGB frames of ``faces`` (1 or 4) gliding synthetic faces, and their boxes."""
    from fermixnet.synth.generate import SynthConfig, render_sample

    side = 160 if faces == 1 else 112
    spots = [(200, 150)] if faces == 1 else [(100 + 200 * (i % 2), 60 + 200 * (i // 2))
                                             for i in range(faces)]
    # Generator faces (test split) that the Haar detector finds on this gradient.
    pics = [render_sample(0, "test", i, side, SynthConfig())[0] for i in (0, 7, 10, 11)[:faces]]
    yy, xx = np.mgrid[0:H, 0:W]
    ground = np.stack([90 + 0.2 * xx, 110 + 0.2 * yy, 130 + 0.1 * (xx + yy)], -1)
    ground = ground.clip(0, 255).astype(np.uint8)
    out, boxes = [], []
    for t in range(frames):
        frame, fb = ground.copy(), []
        for (x, y), pic in zip(spots, pics, strict=True):
            x += 4 * (t % 20)
            frame[y : y + side, x : x + side] = pic
            fb.append((float(x), float(y), float(x + side), float(y + side)))
        out.append(frame)
        boxes.append(fb)
    return out, boxes


def rate(fn, items: list, warm: int = 2) -> float:
    """Calls of ``fn`` per second over ``items`` (each one call), after ``warm`` warm-up calls."""
    for item in items[:warm]:
        fn(item)
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def measure(pred, frames: list[np.ndarray], boxes: list, batch: int) -> dict[str, Any]:
    """frames/s of each way through the predictor, and faces found per frame."""
    chunks = [list(range(i, i + batch)) for i in range(0, len(frames) - batch + 1, batch)]
    out = {
        "predict": rate(lambda f: pred.predict(f), frames),
        "frame": rate(lambda f: pred.predict_frame(f), frames),
        "frames": batch * rate(lambda c: pred.predict_frames([frames[i] for i in c]), chunks, 1),
        "boxes": batch * rate(lambda c: pred.predict_frames(
            [frames[i] for i in c], [boxes[i] for i in c]), chunks, 1),
        "faces_found": float(np.mean([len(pred.predict_frame(f).faces) for f in frames[:8]])),
    }
    return {k: round(v, 2) for k, v in out.items()}


def stages(served, frame: np.ndarray, repeats: int) -> dict[str, float]:
    """Median ms per stage of one live frame through the served model's path."""
    from fermixnet.inference.backends import normalise_crops
    from fermixnet.serve.analysis import decode_image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=85)
    data, pred = buf.getvalue(), served.predictor
    times: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "align", "forward",
                                                     "encode")}
    for _ in range(repeats + 2):
        t0 = time.perf_counter()
        img = decode_image(data)
        t1 = time.perf_counter()
        faces = pred.detector.detect(img)
        t2 = time.perf_counter()
        x = normalise_crops(np.stack([pred.crop(img, f) for f in faces]), pred.mean, pred.std)
        t3 = time.perf_counter()
        logits = served.run_heads(x)
        t4 = time.perf_counter()
        fused, high, mid = (np.exp(z - z.max(1, keepdims=True)) for z in logits)
        body = [{**pred.face_result(f, p / p.sum(), 1.0).to_dict(),
                 "heads": {"high": (h / h.sum()).tolist(), "mid": (m / m.sum()).tolist()}}
                for f, p, h, m in zip(faces, fused, high, mid, strict=True)]
        json.dumps({"results": [{"faces": body}]})
        t5 = time.perf_counter()
        for key, a, b in zip(times, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
            times[key].append((b - a) * 1e3)
    return {k: round(float(np.median(v[2:])), 2) for k, v in times.items()}


def run(args, work: Path) -> dict[str, Any]:
    from fermixnet.inference import Predictor
    from fermixnet.serve.model import load_served_model

    models = write_models(work, args.size, args.backends)
    clips = {n: clip(args.frames, n) for n in (1, 4)}
    out: dict[str, Any] = {"frames": args.frames, "batch": args.batch, "model_size": args.size}
    print(f"{'backend':12s} {'faces':>5s} {'predict':>8s} {'frame':>8s} {'frames':>8s} "
          f"{'boxes':>8s}   (frames/s)  frame/predict  faces/s with boxes", file=sys.stderr)
    for backend in args.backends:
        kind = "torch" if backend == "torch" else "onnxruntime"
        pred = Predictor.from_checkpoint(models[backend], backend=kind, detector=args.detector)
        out[backend] = {"detector": pred.detector.name}
        for n, (frames, boxes) in clips.items():
            r = measure(pred, frames, boxes, args.batch)
            r["faces_per_s_boxes"] = round(r["boxes"] * n, 1)
            r["ratio_frame_vs_predict"] = round(r["frame"] / r["predict"], 2)
            out[backend][f"{n}_faces"] = r
            print(f"{backend:12s} {n:5d} {r['predict']:8.1f} {r['frame']:8.1f} "
                  f"{r['frames']:8.1f} {r['boxes']:8.1f}   {r['ratio_frame_vs_predict']:11.2f}x"
                  f"  {r['faces_per_s_boxes']:8.1f}  (found {r['faces_found']:.1f} faces)",
                  file=sys.stderr)
        served = load_served_model(models[backend], detector=args.detector, workers=1)
        ms = stages(served, clips[1][0][0], args.repeats)
        total = sum(ms.values())
        out[backend]["stages_ms"] = ms
        shares = "  ".join(f"{k} {v:.1f} ms ({100 * v / total:.0f}%)" for k, v in ms.items())
        print(f"{backend:12s} stages of one live frame: {shares}", file=sys.stderr)
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames per measurement")
    parser.add_argument("--batch", type=int, default=8, help="frames per predict_frames call")
    parser.add_argument("--repeats", type=int, default=20, help="frames timed per stage")
    parser.add_argument("--backends", nargs="+", choices=("torch", "onnxruntime", "int8"),
                        default=["torch", "onnxruntime", "int8"])
    parser.add_argument("--detector", default="auto", help="face detector")
    parser.add_argument("--size", type=int, default=112, help="model input size")
    args = parser.parse_args()
    setup(args)
    if args.smoke:
        args.frames, args.batch, args.repeats, args.size = 4, 2, 2, 48
    with tempfile.TemporaryDirectory(prefix="fermixnet-frames-") as tmp:
        results = run(args, Path(tmp))
    finish("frames", args, results)


if __name__ == "__main__":
    main()
