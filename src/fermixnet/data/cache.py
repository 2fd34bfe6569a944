"""Decoded images at the model's input size, stored once as a uint8 memory-mapped array.

`build_cache(ds, size)` decodes every sample once (thread pool; PIL releases the GIL while
decoding and resizing), resizes it to (H, W) and writes `<key>.npy` (uint8, (N, H, W, 3)) plus
`<key>.json` (labels, subsets, what was skipped) and `<key>.lmk.npz` (each image's five landmarks
in the cached pixel frame, float32 (N, 5, 2), and their source, uint8 (N,):
`fermixnet.data.landmarks`; a spec's `detect_landmarks=` runs a face detector on the samples
without landmarks while decoding: `fermixnet.data.landmark_detection`). The key hashes the
source files' paths, sizes and mtimes (landmark annotation files included), the samples' ids,
labels and meta, the size, the resize method, the framing (whose template stands in for missing
landmarks), the landmark detectors and their settings, and the bad-sample policy (`on_error`),
so a changed source gives a new key and a rebuild, and a strict run never
reuses a cache that skipped images. All files are written under temporary names and `os.replace`d,
the JSON last: an interrupted build leaves no cache that looks valid. The cache lives under
`$FERMIXNET_CACHE` (default `~/.cache/fermixnet`), never inside the data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from fermixnet.data.base import FERDataset
from fermixnet.data.cached import MAX_LISTED, CachedImages
from fermixnet.data.imageio import ImageReadError, resize_rgb
from fermixnet.data.landmark_detection import DetectorFactory, detection_for
from fermixnet.data.landmarks import LandmarkTable
from fermixnet.progress import progress_bar

CACHE_FORMAT = 2  # 2: landmarks beside the images


def default_cache_dir() -> Path:
    """`$FERMIXNET_CACHE`, else `$XDG_CACHE_HOME/fermixnet`, else `~/.cache/fermixnet`."""
    if os.environ.get("FERMIXNET_CACHE"):
        return Path(os.environ["FERMIXNET_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fermixnet"


def sample_digest(
    dataset: FERDataset, size: tuple[int, int], method: str, on_error: str = "raise",
    detectors: dict[str, dict[str, Any]] | None = None,
) -> str:
    """SHA-256 of what the cache holds: samples (ids, labels, meta), classes, size, method and
    the bad-sample policy `on_error`, and the framing (the landmarks' fallback template); with
    landmark detection, each sample's detector and `detectors` (name -> settings:
    `LandmarkDetection.settings`). Without detection the digest is that of earlier versions."""
    digest = hashlib.sha256()
    head = {"format": CACHE_FORMAT, "size": list(size), "method": method,
            "classes": list(dataset.classes), "on_error": on_error,
            "framing": dataset.framing.to_meta()}  # fmt: skip
    if detectors:
        head["landmark_detectors"] = detectors
    digest.update(json.dumps(head, sort_keys=True).encode())
    for i, sample in enumerate(dataset.samples):
        meta = json.dumps(dict(sample.meta), sort_keys=True)
        detector = dataset.detect_with(i)
        meta += f"\0{detector}" if detector else ""
        digest.update(f"{dataset.sample_id(i)}\0{sample.label}\0{meta}\n".encode())
    return digest.hexdigest()


def cache_key(
    dataset: FERDataset, size: tuple[int, int], method: str, on_error: str = "raise",
    detectors: dict[str, dict[str, Any]] | None = None,
) -> str:
    """SHA-256 over `sample_digest` and the source files' (path, size, mtime)."""
    return _files_key(sample_digest(dataset, size, method, on_error, detectors), dataset)


def _files_key(samples: str, dataset: FERDataset) -> str:
    """`cache_key` from an already computed `sample_digest`."""
    digest = hashlib.sha256(samples.encode())
    for path in dataset.source_files():
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _cache_stem(dataset: FERDataset, size: tuple[int, int]) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset.name or 'data'}-{dataset.split}")
    return f"{name}-{size[0]}x{size[1]}"


def _check_outside_data(cache_dir: Path, dataset: FERDataset) -> None:
    if dataset.root and cache_dir.resolve().is_relative_to(Path(dataset.root).resolve()):
        raise ValueError(
            f"cache_dir {cache_dir} is inside the data folder {dataset.root}; the data folder is "
            "never written to: choose another cache_dir or set FERMIXNET_CACHE"
        )


def open_cache(json_path: Path, key: str | None = None) -> CachedImages | None:
    """A valid existing cache at `json_path` (matching `key` when given), else None."""
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None
    npy = json_path.with_suffix(".npy")
    if (key is not None and meta.get("key") != key) or not npy.is_file():
        return None
    if not npy.with_suffix(".lmk.npz").is_file():
        return None
    cached = CachedImages(npy, meta)
    expected = (meta["n_rows"], *cached.size, 3)
    if tuple(cached.images.shape) != expected or cached.images.dtype != np.uint8:
        return None
    try:
        points, source = cached.landmark_arrays
    except (OSError, ValueError, KeyError):
        return None
    if points.shape != (meta["n_rows"], 5, 2) or source.shape != (meta["n_rows"],):
        return None
    return cached


def build_cache(
    dataset: FERDataset,
    size: tuple[int, int] | int,
    cache_dir: str | Path | None = None,
    *,
    method: str = "bilinear",
    workers: int | None = None,
    on_error: str | None = None,
    progress: bool = False,
    detectors: DetectorFactory | None = None,
) -> CachedImages:
    """Return the cache of `dataset` at `size`, building it when absent or stale.

    Args:
        dataset: any `FERDataset`.
        size: (H, W) or an int for square images.
        cache_dir: where caches live (default `default_cache_dir()`); not inside the data folder.
        method: resize filter (bilinear, bicubic, lanczos, nearest).
        workers: decoding threads (default: min(8, CPU count)).
        on_error: `raise` on an undecodable image, or `skip` it (listed in `skipped`); default
            the data set's policy: `skip` when it was read with `skip_bad`, else `raise`. Part
            of the cache key.
        progress: show a bar on a terminal, else progress lines (`fermixnet.progress`).
        detectors: builds the face detectors samples ask for with `detect_landmarks=`
            (`fermixnet.inference.faces.landmark_detector`); needed only then.

    Raises:
        ImageReadError / FileNotFoundError: a bad or missing image with `on_error="raise"`.
        ValueError: bad arguments, `cache_dir` inside the data folder, or a detector that is
            asked for but unknown, not installed or without a `detectors` factory.
    """
    if on_error is None:
        on_error = "skip" if dataset.report.skip_bad else "raise"
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    resize_rgb(np.zeros((1, 1, 3), np.uint8), (1, 2), method)  # validates `method` early
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    _check_outside_data(cache_dir, dataset)
    detection = detection_for(dataset, detectors)  # every detector made before any decoding
    settings = detection.settings if detection else None
    digest = sample_digest(dataset, size, method, on_error, settings)  # once: N samples' meta
    key = _files_key(digest, dataset)
    # <name>-<split>-<HxW>-<which samples>-<which file versions>: a changed source file replaces
    # the cache of the same samples; other variants (options, roots) keep their own caches.
    stem = f"{_cache_stem(dataset, size)}-{digest[:12]}"
    json_path = cache_dir / f"{stem}-{key[:16]}.json"
    cached = open_cache(json_path, key)
    if cached is not None:
        cached.read_skipped = dict(dataset.report.skipped)  # this reading's counts, not the build's
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    marks = LandmarkTable(len(dataset), detection)
    meta = _write_cache(dataset, size, method, json_path, key, workers, on_error, progress, marks)
    for old in cache_dir.glob(f"{stem}-*.*"):  # stale versions of the same samples
        mine = old.name.startswith(f"{json_path.stem}.")
        if not mine and old.suffix in (".npy", ".json", ".npz"):
            old.unlink(missing_ok=True)
    return CachedImages(json_path.with_suffix(".npy"), meta)


def _write_cache(
    dataset: FERDataset,
    size: tuple[int, int],
    method: str,
    json_path: Path,
    key: str,
    workers: int | None,
    on_error: str,
    progress: bool,
    marks: LandmarkTable,
) -> dict[str, Any]:
    n = len(dataset)
    tmp_npy = json_path.with_name(f".{json_path.stem}.{os.getpid()}.npy.tmp")
    tmp_json = json_path.with_name(f".{json_path.stem}.{os.getpid()}.json.tmp")
    tmp_lmk = json_path.with_name(f".{json_path.stem}.{os.getpid()}.lmk.tmp.npz")
    try:
        array = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.uint8,
                                          shape=(n, size[0], size[1], 3))  # fmt: skip
        failed = _fill(dataset, array, marks, size, method, workers, on_error, progress)
        if n and len(failed) == n:  # training on nothing is never what was meant
            raise ImageReadError(
                f"{dataset.name}:{dataset.split}: none of the {n} images could be decoded "
                f"(first: {failed[min(failed)]})"
            )
        array.flush()
        del array
        meta = _cache_meta(dataset, size, method, key, failed)
        meta.update(on_error=on_error, read_skipped=dict(dataset.report.skipped))
        meta.update(marks.summary(dataset, failed, MAX_LISTED))
        np.savez(tmp_lmk, points=marks.points, source=marks.source)
        tmp_json.write_text(json.dumps(meta))
        os.replace(tmp_npy, json_path.with_suffix(".npy"))
        os.replace(tmp_lmk, json_path.with_suffix(".lmk.npz"))
        os.replace(tmp_json, json_path)  # the JSON is the commit marker: written last
        return meta
    finally:
        tmp_npy.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
        tmp_lmk.unlink(missing_ok=True)


def _fill(
    dataset: FERDataset,
    array: np.ndarray,
    marks: LandmarkTable,
    size: tuple[int, int],
    method: str,
    workers: int | None,
    on_error: str,
    progress: bool,
) -> dict[int, str]:
    failed: dict[int, str] = {}

    def work(chunk: range) -> int:
        for i in chunk:
            try:
                image = dataset.load(i)
                array[i] = resize_rgb(image, size, method)
                marks.put(dataset, i, image, size)
            except (ImageReadError, FileNotFoundError) as err:
                if on_error == "raise":
                    raise
                failed[i] = str(err)
        return len(chunk)

    n = len(dataset)
    chunks = [range(s, min(s + 64, n)) for s in range(0, n, 64)]
    workers = workers or min(8, os.cpu_count() or 1)
    detect = marks.detect is not None  # a detector's misses are shown as they happen
    desc = f"caching {dataset.name}:{dataset.split}" + (" + landmark detection" if detect else "")
    bar = progress_bar(total=n, desc=desc, unit="img", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for done in pool.map(work, chunks):
            if detect:
                bar.set_postfix(no_face=len(marks.missed))
            bar.update(done)
    finally:
        # On an error or Ctrl-C, queued chunks are dropped rather than decoded for nothing.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return failed


def _cache_meta(
    dataset: FERDataset, size: tuple[int, int], method: str, key: str, failed: dict[int, str]
) -> dict[str, Any]:
    kept = [i for i in range(len(dataset)) if i not in failed]
    position = {idx: pos for pos, idx in enumerate(kept)}
    subsets = {
        name: [position[i] for i in members if i in position]
        for name, members in dataset.subsets().items()
    }
    all_labels = dataset.labels()
    return {
        "format": CACHE_FORMAT,
        "key": key,
        "dataset": dataset.name,
        "split": dataset.split,
        "root": dataset.root,
        "size": list(size),
        "method": method,
        "classes": list(dataset.classes),
        "n_rows": len(dataset),
        "rows": kept,
        "indices": kept,
        "labels": [int(all_labels[i]) for i in kept],
        "subsets": subsets,
        "skipped": sorted(failed.items()),
    }
