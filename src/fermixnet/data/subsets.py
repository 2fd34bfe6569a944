"""Occlusion and pose subset lists, matched to a data set's images by file stem.

Formats read (all tolerate CRLF line ends, blank lines and duplicated lines, which are counted):

- RAN's Occlusion-RAF-DB list `rafdb_occlusion_list.txt`: `test_0003_aligned 3 4` = stem,
  0-based RAF-DB label, occlusion code (the code's meaning is not documented; kept as meta
  `occlusion_code`). The public file holds one line twice.
- RAN's Pose-RAF-DB lists `val_raf_db_list.txt` (>30 deg) and `val_raf_db_list_45.txt` (>45 deg):
  `3/test_0025_aligned.jpg` = 0-based label folder / file, with companion label files
  (`val_raf_db_label.txt`, `val_raf_db_label_45.txt`) whose first line is the header `N 7`.
- RAN's Occlusion-FERPlus `jianfei_occlusion_list.txt`: `1_fer0034656.png 8 0` (label prefix,
  then two codes) and Pose-FERPlus `pose_30_ferplus_list.txt`, `pose_45_ferplus_list.txt`.
- RAN's AffectNet lists `occlusion_affectnet_list.txt` (`val/7/<id>/`) and
  `pose_30_affectnet_list.txt`, `pose_45_affectnet_list.txt` (`4/<id>.jpg`).
- The paper's occlusion-type split (Sec. 4.1.4), supplied by the user: `<stem> <UL|LR|C>`
  (also `upper_lower`, `left_right`, `corner`), whitespace or comma separated.

Matching uses `stem_key`: last path component, extension, `_aligned` suffix and FERPlus's
`<label>_` prefix removed, lower case. List entries are only marked in meta; labels always come
from the data set itself (a differing list label is counted as a mismatch in the report).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from fermixnet.data.base import DatasetReport, Sample

KINDS: tuple[str, ...] = ("occlusion", "pose30", "pose45", "occlusion_type")
_TYPE_ALIASES: Mapping[str, str] = {
    "ul": "UL", "upper_lower": "UL", "upper-lower": "UL", "upper": "UL", "lower": "UL",
    "lr": "LR", "left_right": "LR", "left-right": "LR", "left": "LR", "right": "LR",
    "c": "C", "corner": "C",
}  # fmt: skip
_EXT = re.compile(r"\.(jpe?g|png|bmp|webp)$", re.IGNORECASE)
_FER_PREFIX = re.compile(r"^(\d+)_(fer\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class ListEntry:
    """One line of a subset list.

    Attributes:
        key: `stem_key` of the named image.
        label: the list's own label code (0-based in RAN's lists), if the line has one.
        value: occlusion code (RAN lists) or occlusion type UL/LR/C (paper's split), if any.
        line: 1-based line number.
    """

    key: str
    label: int | None
    value: str
    line: int


def stem_key(name: str) -> str:
    """Normalised image stem: `3/test_0025_aligned.jpg` -> `test_0025`, `1_fer01.png` -> `fer01`."""
    base = [p for p in re.split(r"[\\/]", name.strip()) if p][-1]
    base = _EXT.sub("", base)
    base = re.sub(r"_aligned$", "", base, flags=re.IGNORECASE)
    match = _FER_PREFIX.match(base)
    return (match.group(2) if match else base).lower()


def _int(token: str, where: str) -> int:
    if not re.fullmatch(r"-?\d+", token):
        raise ValueError(f"{where}: expected an integer, got {token!r}")
    return int(token)


def _parse_line(text: str, kind: str, where: str, line: int) -> ListEntry:
    tokens = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    if not tokens:
        raise ValueError(f"{where}: no image name in line {text.strip()!r}")
    name = tokens[0]
    parts = [p for p in re.split(r"[\\/]", name) if p]
    prefix = _FER_PREFIX.match(_EXT.sub("", parts[-1]))
    label: int | None = None
    if prefix:
        label = int(prefix.group(1))
    elif len(parts) > 1 and parts[-2].isdigit():
        label = int(parts[-2])
    if kind == "occlusion_type":
        if len(tokens) != 2 or tokens[1].lower() not in _TYPE_ALIASES:
            raise ValueError(
                f"{where}: expected '<image> <UL|LR|C>' (occlusion type), got {text.strip()!r}"
            )
        return ListEntry(stem_key(name), label, _TYPE_ALIASES[tokens[1].lower()], line)
    numbers = [_int(t, where) for t in tokens[1:]]
    if label is None and numbers:
        label = numbers[0]
    value = str(numbers[-1]) if len(numbers) >= 2 else ""
    return ListEntry(stem_key(name), label, value, line)


def read_subset_list(
    path: Path, kind: str, report: DatasetReport | None = None
) -> tuple[list[ListEntry], int]:
    """Entries of a subset list and the number of duplicated lines dropped.

    Args:
        path: the list file.
        kind: occlusion, pose30, pose45 or occlusion_type.
        report: when given, a malformed line is skipped and counted (`malformed list line`)
            instead of raising (the adapters pass it with `skip_bad`).

    Raises:
        FileNotFoundError: no such list.
        ValueError: a malformed line (file and line number in the message), without `report`.
    """
    if kind not in KINDS:
        raise ValueError(f"subset list kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not path.is_file():
        raise FileNotFoundError(f"subset list {path} not found")
    entries: list[ListEntry] = []
    seen: set[str] = set()
    duplicates = 0
    with open(path, encoding="utf-8-sig") as handle:  # universal newlines: CRLF is fine
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                entry = _parse_line(text, kind, f"{path}:{number}", number)
            except ValueError:
                if report is None:
                    raise
                report.skip("malformed list line")
                continue
            if entry.key in seen:
                duplicates += 1
                continue
            seen.add(entry.key)
            entries.append(entry)
    return entries, duplicates


def read_label_file(path: Path) -> list[int]:
    """RAN's companion label file: header `N K`, then N integer labels, one a line.

    Raises:
        ValueError: a bad header, a non-integer label or a count that differs from N.
    """
    lines = [t.strip() for t in path.read_text(encoding="utf-8-sig").splitlines()]
    header = lines[0].split() if lines else []
    if len(header) != 2 or not all(h.isdigit() for h in header):
        raise ValueError(f"{path}:1: expected a header 'N K' (count, classes), got {lines[:1]}")
    values = [_int(t, f"{path}:{i}") for i, t in enumerate(lines[1:], start=2) if t]
    if len(values) != int(header[0]):
        raise ValueError(f"{path}: header says {header[0]} labels, found {len(values)}")
    return values


def check_companion(list_path: Path, label_path: Path) -> None:
    """Check that a pose list and its label file agree line for line.

    Raises:
        ValueError: different lengths, or a label that differs from the list's label folder.
    """
    labels = read_label_file(label_path)
    lines = [t for t in list_path.read_text(encoding="utf-8-sig").splitlines() if t.strip()]
    if len(lines) != len(labels):
        raise ValueError(
            f"{label_path}: {len(labels)} labels but {list_path} has {len(lines)} lines"
        )
    for number, (text, label) in enumerate(zip(lines, labels, strict=True), start=1):
        entry = _parse_line(text, "pose30", f"{list_path}:{number}", number)
        if entry.label is not None and entry.label != label:
            raise ValueError(
                f"{label_path}:{number + 1}: label {label} differs from {list_path}:{number} "
                f"({text.strip()})"
            )


def _meta_for(kind: str, entry: ListEntry) -> dict[str, str]:
    if kind == "occlusion":
        return {"occluded": "1", **({"occlusion_code": entry.value} if entry.value else {})}
    if kind == "occlusion_type":
        return {"occluded": "1", "occlusion_type": entry.value}
    return {"pose>30" if kind == "pose30" else "pose>45": "1"}


def apply_subset_list(
    samples: Sequence[Sample],
    path: Path,
    kind: str,
    report: DatasetReport,
    *,
    label_map: Mapping[int, int] | None = None,
    quiet_if_unmatched: bool = False,
    skip_bad: bool = False,
) -> list[Sample]:
    """Mark the samples named in a list (meta), and record how many entries were found.

    Args:
        samples: the split's samples; matched by `stem_key` of meta `image_name` or the path.
        path: the list file.
        kind: occlusion, pose30, pose45 or occlusion_type.
        report: receives `lists[<file name>]` counts, a note and the file as a cache source.
        label_map: list label code -> canonical index, to count label mismatches.
        quiet_if_unmatched: record nothing when no entry matches (a list found by its public
            name that belongs to another split).
        skip_bad: skip malformed lines (counted in `report.skipped`) instead of raising.
    """
    entries, duplicates = read_subset_list(path, kind, report if skip_bad else None)
    by_key = {stem_key(s.meta.get("image_name") or s.path): i for i, s in enumerate(samples)}
    out = list(samples)
    found = mismatches = 0
    for entry in entries:
        index = by_key.get(entry.key)
        if index is None:
            continue
        found += 1
        sample = out[index]
        if label_map is not None and entry.label is not None:
            mismatches += int(label_map.get(entry.label, -1) != sample.label)
        out[index] = replace(sample, meta={**sample.meta, **_meta_for(kind, entry)})
    if found == 0 and quiet_if_unmatched:
        return out
    report.lists[path.name] = {
        "entries": len(entries), "duplicates": duplicates, "found": found,
        "missing": len(entries) - found, "label_mismatches": mismatches,
    }  # fmt: skip
    report.notes.append(
        f"{kind} list {path.name}: {len(entries)} entries, {found} found among "
        f"{len(samples)} images (duplicated lines dropped: {duplicates})"
        + (f", {mismatches} with a different label" if mismatches else "")
    )
    report.sources.append(str(path))
    return out


def find_list(roots: Sequence[Path], names: Sequence[str]) -> Path | None:
    """The first of `names` found in a root, or its `lists` or `subsets` folder."""
    for root in roots:
        for folder in (root, root / "lists", root / "subsets"):
            for name in names:
                if (folder / name).is_file():
                    return folder / name
    return None


def attach_lists(
    samples: Sequence[Sample],
    roots: Sequence[Path],
    defaults: Mapping[str, Sequence[str]],
    explicit: Mapping[str, str | None],
    report: DatasetReport,
    *,
    label_map: Mapping[int, int] | None = None,
    skip_bad: bool = False,
) -> list[Sample]:
    """Apply every subset list given explicitly or found under its public name.

    Args:
        samples: the split's samples.
        roots: where to look for lists by their public names (see `find_list`).
        defaults: kind -> public file names.
        explicit: kind -> user path (None: use the default name if present).
        report: receives the counts.
        label_map: list label code -> canonical index (mismatch counting).
        skip_bad: skip malformed list lines (counted) instead of raising.

    A pose list `X_list*.txt` with a companion `X_label*.txt` (RAN's files with the `N 7` header)
    is checked against it line by line.
    """
    out = list(samples)
    for kind in KINDS:
        given = explicit.get(kind)
        path = Path(given).expanduser() if given else find_list(roots, defaults.get(kind, ()))
        if path is None:
            continue
        if given and not path.is_file():
            raise FileNotFoundError(f"option {kind}_list={given}: subset list {path} not found")
        label_path = path.with_name(path.name.replace("_list", "_label"))
        if kind.startswith("pose") and label_path != path and label_path.is_file():
            check_companion(path, label_path)
            report.sources.append(str(label_path))
        out = apply_subset_list(
            out, path, kind, report, label_map=label_map, quiet_if_unmatched=not given,
            skip_bad=skip_bad,
        )
    return out
