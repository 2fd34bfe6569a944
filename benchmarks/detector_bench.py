"""Face detector benchmark: detection rates, speed, and whether detectors agree on a face's crop.

Three measurements over every installed backend of ``fermixnet.inference.faces`` (yunet, dlib,
haar, mediapipe):

- **rates**: faces found (IoU > 0.4 with the pasted face) and other detections, on the drawn test
  faces of tests/scene_helpers.py (10 scenes of 384 px, two 96 px faces each) without occluder,
  with sunglasses and with a mask; on faces of the synthetic generator (10 such scenes); and on a
  real photograph (matplotlib's Grace Hopper, mirrored, turned up to 8 degrees, 80-200 px faces
  in 640x480 scenes).
- **speed**: wall and CPU ms per ``detect`` call on one image with one face, 512x512 and
  640x480, each detector alone in its own process, the processes taking turns (drift affects
  all alike), with ratios to Haar.
- **crop agreement**: for faces every detector found, the ``box:0.1`` crop (FER2013's framing)
  each detector's landmarks give, against YuNet's: the largest corner offset, in pixels of a
  48 px crop. ``--calibrate`` also prints where dlib's raw points and YuNet's landmarks inside
  Haar boxes sit in the template's frame (the constants ``DLIB_POINTS`` and ``RAFDB_TEMPLATE``).

Run from the repository root: ``python benchmarks/detector_bench.py [--calibrate] [--out F]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import base_parser, finish, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fermixnet.framing import RAFDB_TEMPLATE, parse_framing
from fermixnet.inference.align import (
    apply_similarity,
    crop_corners,
    estimate_similarity,
    framing_transform,
)
from fermixnet.inference.faces import create_detector, list_detectors
from scene_helpers import box_iou, photo_scene, scene_with_faces

NAMES = ("yunet", "mediapipe", "dlib", "haar")
CROP = 48


def detectors() -> dict[str, Any]:
    """Every installed backend of :data:`NAMES` (dlib: HOG, upsample 1)."""
    avail = list_detectors()
    return {n: create_detector(n) for n in NAMES if avail.get(n)}


def generator_scene(seed: int, size: int = 384, face: int = 96):
    """Two faces of the synthetic generator (test split) pasted into a drawn background."""
    from fermixnet.synth import generate as synthetic
    from scene_helpers import background, paste

    img = background(size, size, seed)
    rng = np.random.default_rng(seed)
    boxes = []
    for i in range(2):
        f, _, _ = synthetic.render_sample(0, "test", 2 * seed + i, face, synthetic.SynthConfig())
        x = i * size // 2 + int(rng.integers(4, size // 2 - face - 4))
        boxes.append(paste(img, f, x, int(rng.integers(4, size - face - 4))))
    return img, boxes


def scene_sets(n: int) -> dict[str, list[tuple[np.ndarray, list[tuple[float, ...]]]]]:
    """The scenes of the rate table: name -> [(image, face boxes)]."""
    sets = {f"drawn, {occ or 'no occluder'}": [scene_with_faces(s, 2, 384, 96, occ)
                                                for s in range(n)]
            for occ in (None, "sunglasses", "mask")}
    sets["generator faces"] = [generator_scene(s) for s in range(n)]
    sets["photo"] = [(img, [box]) for img, box in (photo_scene(s) for s in range(2 * n))]
    return sets


def match(faces, box, thr: float = 0.4):
    """The detection with the best IoU > ``thr`` with ``box``, or None."""
    best = max(faces, key=lambda f: box_iou(f.box, box), default=None)
    return best if best is not None and box_iou(best.box, box) > thr else None


def rates(dets: dict[str, Any], sets) -> dict[str, Any]:
    """Found / total and other detections per detector and scene set; matched faces kept."""
    out: dict[str, Any] = {}
    for set_name, scenes in sets.items():
        row: dict[str, Any] = {}
        for name, det in dets.items():
            found = other = 0
            for img, boxes in scenes:
                faces = det.detect(img)
                hits = [match(faces, b) for b in boxes]
                found += sum(h is not None for h in hits)
                other += len(faces) - len({id(h) for h in hits if h is not None})
            row[name] = {"found": found, "faces": sum(len(b) for _, b in scenes), "other": other}
        out[set_name] = row
    return out


SIZES = ((512, 512), (480, 640))


def time_one(name: str, calls: int) -> dict[str, Any]:
    """Wall and CPU (process) ms of ``calls`` detect calls per size, after one untimed call."""
    det = create_detector(name)
    out: dict[str, Any] = {}
    for h, w in SIZES:
        img, _ = scene_with_faces(0, 1, size=max(h, w), face=160)
        img = np.ascontiguousarray(img[:h, :w])
        det.detect(img)
        wall, cpu = [], []
        for _ in range(calls):
            t, c = time.perf_counter(), time.process_time()
            det.detect(img)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[f"{w}x{h}"] = {"wall": wall, "cpu": cpu}
    return out


def speed(names: list[str], rounds: int, calls: int) -> dict[str, Any]:
    """Median ms per detect call at 512x512 and 640x480 (one face), with ratios to Haar.

    Each detector runs alone in its own process, as in ``predict`` or ``serve``: in one process,
    OpenCV's worker threads still spin after a Haar call and slow the next backend's call 2-3x.
    The processes take turns over ``rounds`` so that drift in the machine's load hits all alike.
    """
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in names:
            proc = subprocess.run([sys.executable, __file__, "--time-one", name, "--calls",
                                   str(calls)], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(proc.stdout.splitlines()[-1]))
    out: dict[str, Any] = {}
    for h, w in SIZES:
        size = f"{w}x{h}"
        res: dict[str, Any] = {
            n: {f"{k}_ms": median([t for r in runs[n] for t in r[size][k]]) * 1e3
                for k in ("wall", "cpu")} for n in names}
        if "haar" in res:
            for key in ("wall_ms", "cpu_ms"):
                res[f"haar_over_{key}"] = {n: res["haar"][key] / res[n][key] for n in names}
        out[size] = res
    return out


def agreement(dets: dict[str, Any], sets, ref: str = "yunet") -> dict[str, Any]:
    """Largest box:0.1 crop-corner offset from ``ref``'s crop, in px of a 48 px crop."""
    framing = parse_framing("box:0.1")
    offsets: dict[str, dict[str, list[float]]] = {}
    for set_name in ("drawn, no occluder", "generator faces", "photo"):
        for img, boxes in sets[set_name]:
            found = {n: d.detect(img) for n, d in dets.items()}
            for box in boxes:
                hits = {n: match(f, box) for n, f in found.items()}
                if any(h is None for h in hits.values()):
                    continue
                corners = {n: crop_corners(framing_transform(h.landmarks, framing, CROP), CROP)
                           for n, h in hits.items()}
                side = corners[ref][1, 0] - corners[ref][0, 0]
                for n, c in corners.items():
                    if n != ref:
                        off = np.abs(c - corners[ref]).max() / side * CROP
                        offsets.setdefault(set_name, {}).setdefault(n, []).append(float(off))
    return {s: {n: {"faces": len(v), "mean_px": float(np.mean(v)), "max_px": float(np.max(v))}
                for n, v in per.items()} for s, per in offsets.items()}


def calibrate(dets: dict[str, Any], sets) -> dict[str, Any]:
    """Mean template-frame positions: dlib's eye centres + nose base, YuNet's marks in Haar boxes.

    The frame is the similarity that maps YuNet's five landmarks of the face onto the template.
    Means are mirrored (left/right averaged) so the constants are symmetric.
    """
    dlib, yunet = dets["dlib"], dets["yunet"]
    dl_pts, in_haar = [], []
    for set_name in ("drawn, no occluder", "generator faces", "photo"):
        for img, boxes in sets[set_name]:
            y_faces, h_faces = yunet.detect(img), dets["haar"].detect(img)
            rects = [(r, s) for r, s in dlib._boxes(img)]
            for box in boxes:
                y = match(y_faces, box)
                if y is None:
                    continue
                m = estimate_similarity(y.landmarks, RAFDB_TEMPLATE)
                h = match(h_faces, box)
                if h is not None:
                    x0, y0, x1, y1 = h.box
                    in_haar.append((y.landmarks - (x0, y0)) / (x1 - x0, y1 - y0))
                for rect, _ in rects:
                    r = (rect.left(), rect.top(), rect.right(), rect.bottom())
                    if box_iou(r, box) > 0.4:
                        sh = dlib._shape(img, rect)
                        p = np.array([[sh.part(i).x, sh.part(i).y] for i in range(5)], float)
                        raw = np.stack([p[2:4].mean(0), p[0:2].mean(0), p[4]])
                        dl_pts.append(apply_similarity(m, raw))
    dl, hr = np.mean(dl_pts, 0), np.mean(in_haar, 0)
    mirror = lambda a, pairs: (a + np.array([[1 - a[j, 0], a[j, 1]] for j in pairs])) / 2  # noqa
    return {"dlib_faces": len(dl_pts), "dlib_points": mirror(dl, (1, 0, 2)).round(3).tolist(),
            "dlib_points_sd": np.std(dl_pts, 0).round(3).tolist(),
            "haar_faces": len(in_haar),
            "yunet_in_haar_box": mirror(hr, (1, 0, 2, 4, 3)).round(3).tolist(),
            "yunet_in_haar_box_sd": np.std(in_haar, 0).round(3).tolist()}


def print_tables(res: dict[str, Any]) -> None:
    """Markdown tables of the results."""
    names = list(res["detectors"])
    print("| scenes | " + " | ".join(names) + " |")
    print("|" + " --- |" * (len(names) + 1))
    for set_name, row in res["rates"].items():
        cells = [f"{row[n]['found']}/{row[n]['faces']} (+{row[n]['other']})" for n in names]
        print(f"| {set_name} | " + " | ".join(cells) + " |")
    for size, r in res["speed"].items():
        ratio = r.get("haar_over_wall_ms", {})
        print(f"{size}: " + ", ".join(
            f"{n} {r[n]['wall_ms']:.1f} ms (CPU {r[n]['cpu_ms']:.1f} ms; {ratio.get(n, 0):.2f}x "
            "Haar's speed)" for n in names))
    for set_name, per in res["agreement"].items():
        print(f"box:0.1 crop vs yunet, {set_name}: " + ", ".join(
            f"{n} mean {v['mean_px']:.2f} px max {v['max_px']:.2f} px over {v['faces']} faces"
            for n, v in per.items()))


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=10, help="scenes per set (photo: twice)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (one process each)")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per round and size")
    parser.add_argument("--time-one", help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", action="store_true", help="also print the calibration")
    parser.add_argument("--speed-only", action="store_true", help="only the speed table")
    args = parser.parse_args()
    if args.time_one:  # a timing child process of speed()
        print(json.dumps(time_one(args.time_one, args.calls)))
        return
    if args.smoke:
        args.scenes, args.rounds, args.calls = 2, 1, 2
    dets = detectors()
    res: dict[str, Any] = {"detectors": list(dets), "rates": {}, "agreement": {},
                           "speed": speed(list(dets), args.rounds, args.calls)}
    if args.speed_only:
        finish("detector", args, res)
        print_tables(res)
        return
    sets = scene_sets(args.scenes)
    res["rates"] = rates(dets, sets)
    res["agreement"] = agreement(dets, sets) if "yunet" in dets else {}
    if args.calibrate and {"yunet", "dlib", "haar"} <= set(dets):
        res["calibration"] = calibrate(dets, sets)
    finish("detector", args, res)
    print_tables(res)


if __name__ == "__main__":
    main()
