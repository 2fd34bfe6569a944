"""Tiny on-disk replicas of the data set formats, shared by the tests/test_data_*.py files
(plain helpers, not a test module).

Images are 8-16 px, generated with a seeded generator; list files copy the real layouts and
quirks (CRLF, a duplicated line, `N 7` headers, FED-RO's `neural` folder, AffectNet codes 8-10).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

RNG_SEED = 0


def image_array(seed: int, h: int = 12, w: int = 10) -> np.ndarray:
    """A reproducible (h, w, 3) uint8 image."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (12, 10), mode: str = "RGB"):
    """Write a small image in `mode` (RGB, L, RGBA, CMYK, I;16) to `path`; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = image_array(seed, *size)
    if mode == "I;16":
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
    else:
        Image.fromarray(rgb).convert(mode).save(path)
    return path


def write_truncated_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG cut in half: PIL opens it but fails when decoding."""
    buf = io.BytesIO()
    Image.fromarray(image_array(seed, 16, 16)).save(buf, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image name and garbage content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image at all")
    return path


def make_folder_tree(root: Path, layout: dict[str, dict[str, int]]) -> Path:
    """`root/<split>/<class>/<k>.png` with layout {split: {class: count}}."""
    seed = 0
    for split, classes in layout.items():
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(count):
                write_image(root / split / name / f"{k}.png", seed)
                seed += 1
    return root


# --- RAF-DB ------------------------------------------------------------------------------------
# (name in list_patition_label.txt, RAF-DB label 1..7)
RAFDB_TRAIN = [(f"train_{i:05d}.jpg", (i - 1) % 7 + 1) for i in range(1, 9)]
RAFDB_TEST = [(f"test_{i:04d}.jpg", (i + 2) % 7 + 1) for i in range(1, 7)]


def make_rafdb(root: Path, *, extra_lines: str = "", lists: bool = True) -> Path:
    """`root/basic/{EmoLabel,Image/aligned,Image/original}` plus RAN's lists in `root`."""
    basic = root / "basic"
    (basic / "EmoLabel").mkdir(parents=True, exist_ok=True)
    lines = [f"{n} {lab}" for n, lab in RAFDB_TRAIN + RAFDB_TEST]
    label_file = basic / "EmoLabel" / "list_patition_label.txt"
    label_file.write_text("\n".join(lines) + "\n" + extra_lines)
    for seed, (name, _) in enumerate(RAFDB_TRAIN + RAFDB_TEST):
        stem = name[:-4]
        write_image(basic / "Image" / "aligned" / f"{stem}_aligned.jpg", seed, (16, 16))
        write_image(basic / "Image" / "original" / name, seed, (20, 14))
    if lists:
        # Occlusion-RAF-DB: `<stem>_aligned <0-based label> <code>`, CRLF, one line twice.
        occ = ["test_0001_aligned 3 4", "test_0002_aligned 4 3", "test_0002_aligned 4 3",
               "test_0003_aligned 5 1", "test_0999_aligned 0 2"]
        (root / "rafdb_occlusion_list.txt").write_bytes(("\r\n".join(occ) + "\r\n").encode())
        # Pose-RAF-DB >30: `<label>/<stem>_aligned.jpg`, companion label file with `N 7` header.
        pose = [(0, "test_0004"), (6, "test_0005")]
        listed = "".join(f"{lab}/{s}_aligned.jpg\n" for lab, s in pose)
        (root / "val_raf_db_list.txt").write_text(listed)
        companion = f"{len(pose)} 7\n" + "".join(f"{lab}\n" for lab, _ in pose)
        (root / "val_raf_db_label.txt").write_text(companion)
        (root / "val_raf_db_list_45.txt").write_text("6/test_0005_aligned.jpg\n")
        (root / "val_raf_db_label_45.txt").write_text("1 7\n6\n")
    return root


# --- FERPlus -----------------------------------------------------------------------------------
# (Usage, image name, votes over neutral..contempt, unknown, NF, FER2013 emotion)
FERPLUS_ROWS = [
    ("Training", "fer0000000.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0], 0),    # neutral wins
    ("Training", "fer0000001.png", [0, 9, 0, 0, 0, 0, 0, 0, 1, 0], 3),    # happiness
    ("Training", "fer0000002.png", [4, 0, 0, 4, 2, 0, 0, 0, 0, 0], 4),    # tie neutral/sadness
    ("Training", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 6),                 # removed by FERPlus
    ("Training", "fer0000004.png", [1, 0, 0, 0, 0, 0, 0, 0, 4, 5], 2),    # NF >= half
    ("Training", "fer0000005.png", [0, 0, 0, 0, 0, 0, 0, 7, 3, 0], 0),    # contempt
    ("PublicTest", "fer0000006.png", [0, 0, 8, 0, 0, 0, 2, 0, 0, 0], 5),  # surprise
    ("PublicTest", "fer0000007.png", [2, 0, 0, 0, 0, 0, 0, 0, 6, 2], 6),  # unknown wins
    ("PrivateTest", "fer0000008.png", [0, 0, 0, 0, 6, 4, 0, 0, 0, 0], 0),  # anger
    ("PrivateTest", "fer0000009.png", [0, 0, 0, 0, 0, 0, 10, 0, 0, 0], 2),  # fear
]


def ferplus_pixels(seed: int) -> str:
    return " ".join(str(v) for v in image_array(seed, 48, 48)[:, :, 0].ravel())


def make_ferplus_csv(root: Path, rows=FERPLUS_ROWS) -> Path:
    """fer2013.csv + fer2013new.csv with the rows above."""
    root.mkdir(parents=True, exist_ok=True)
    fer = ["emotion,pixels,Usage"]
    fer += [f'{e},"{ferplus_pixels(i)}",{u}' for i, (u, _, _, e) in enumerate(rows)]
    new = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
           "unknown,NF"]
    new += [f"{u},{n},{','.join(map(str, v))}" for u, n, v, _ in rows]
    (root / "fer2013.csv").write_text("\n".join(fer) + "\n")
    (root / "fer2013new.csv").write_text("\n".join(new) + "\n")
    return root


def make_ferplus_folders(root: Path, rows=FERPLUS_ROWS) -> Path:
    """FERPlus's generate_training_data.py layout with the repository's label.csv files."""
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid",
               "PrivateTest": "FER2013Test"}
    labels_by_folder: dict[str, list[str]] = {}
    for i, (usage, name, votes, _) in enumerate(rows):
        if not name:
            continue
        folder = root / folders[usage]
        folder.mkdir(parents=True, exist_ok=True)
        gray = image_array(i, 48, 48)[:, :, 0]
        Image.fromarray(gray).save(folder / name)
        labels_by_folder.setdefault(folders[usage], []).append(
            f'{name},"(0, 0, 48, 48)",{",".join(map(str, votes))}'
        )
    for folder, lines in labels_by_folder.items():
        (root / folder / "label.csv").write_text("\n".join(lines) + "\n")
    return root


# --- AffectNet ---------------------------------------------------------------------------------
AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,"
    "valence,arousal"
)


def make_affectnet_csv(root: Path, codes_train=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 1),
                       codes_val=(0, 6, 7)) -> Path:
    """Manually_Annotated_file_lists/{training,validation}.csv + Manually_Annotated_Images."""
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    seed = 0
    for name, codes in (("training.csv", codes_train), ("validation.csv", codes_val)):
        lines = [AFFECTNET_HEADER]
        for code in codes:
            rel = f"{seed % 3 + 1}/{seed:040x}.jpg"
            write_image(root / "Manually_Annotated_Images" / rel, seed, (16, 20))
            lines.append(f'{rel},2,3,10,8,"1.0;2.0;3.0;4.0",{code},0.1,-0.2')
            seed += 1
        (lists / name).write_text("\n".join(lines) + "\n")
    return root


def make_affectnet_npy(root: Path, codes=(0, 1, 7, 9)) -> Path:
    """train_set/images/<id>.jpg with annotations/<id>_exp.npy (the code as a string)."""
    for split in ("train_set", "val_set"):
        (root / split / "annotations").mkdir(parents=True, exist_ok=True)
        for i, code in enumerate(codes):
            write_image(root / split / "images" / f"{i}.jpg", i, (16, 16))
            np.save(root / split / "annotations" / f"{i}_exp.npy", np.array(str(code)))
    return root


# --- FED-RO ------------------------------------------------------------------------------------
FEDRO_FOLDERS = ("anger", "disgust", "fear", "happy", "neural", "sad", "surprise")


def make_fedro(root: Path, per_class: int = 2) -> Path:
    """`root/FED-RO/<class>/*.jpg` with the release's `neural` spelling."""
    seed = 0
    for name in FEDRO_FOLDERS:
        for k in range(per_class):
            write_image(root / "FED-RO" / name / f"{name}_{k}.jpg", seed)
            seed += 1
    return root
