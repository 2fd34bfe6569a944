"""The canonical expression classes and each dataset's explicit index map.

Canonical order is AffectNet's: neutral, happy, sad, surprise, fear, disgust, anger, contempt.
7-class protocols (RAF-DB, AffectNet-7, FED-RO) use the first seven; 8-class protocols (FERPlus,
AffectNet-8) use all eight. Every adapter maps its own codes through one of the tables below, so a
label order mistake shows up in exactly one place, with a test next to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CANONICAL: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)

# RAF-DB basic, `list_patition_label.txt`: 1 surprise, 2 fear, 3 disgust, 4 happy, 5 sad, 6 anger,
# 7 neutral (1-based codes).
RAFDB_TO_CANONICAL: Mapping[int, int] = {1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6, 7: 0}

# Occlusion-/Pose-RAF-DB lists (RAN, Wang et al.) use the same order as RAF-DB, 0-based.
RAFDB0_TO_CANONICAL: Mapping[int, int] = {k - 1: v for k, v in RAFDB_TO_CANONICAL.items()}

# FERPlus `fer2013new.csv` vote columns: neutral, happiness, surprise, sadness, anger, disgust,
# fear, contempt (then unknown, NF, which are not classes).
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
FERPLUS_TO_CANONICAL: Mapping[int, int] = {0: 0, 1: 1, 2: 3, 3: 2, 4: 6, 5: 5, 6: 4, 7: 7}

# FER2013 `emotion` column: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
FER2013_TO_CANONICAL: Mapping[int, int] = {0: 6, 1: 5, 2: 4, 3: 1, 4: 2, 5: 3, 6: 0}

# AffectNet codes 0..7 are already canonical; 8 none, 9 uncertain, 10 no-face are dropped.
AFFECTNET_TO_CANONICAL: Mapping[int, int] = {i: i for i in range(8)}

# Spellings found in folder names and manifests, including FED-RO's misspelt `neural`.
ALIASES: Mapping[str, str] = {
    "neural": "neutral",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
    "angry": "anger",
    "contemptuous": "contempt",
}


def class_names(num_classes: int) -> tuple[str, ...]:
    """Canonical class names of a 7- or 8-class protocol.

    Raises:
        ValueError: if `num_classes` is not 7 or 8.
    """
    if num_classes not in (7, 8):
        raise ValueError(f"num_classes must be 7 or 8 (canonical protocols), got {num_classes}")
    return CANONICAL[:num_classes]


def canonical_index(name: str, classes: Sequence[str] = CANONICAL) -> int:
    """Index of a class name (case-insensitive, aliases allowed) in `classes`.

    Raises:
        ValueError: naming the unknown label and the accepted names.
    """
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return list(classes).index(key)
    except ValueError:
        raise ValueError(
            f"unknown expression label {name!r}; expected one of {', '.join(classes)} "
            f"(aliases: {', '.join(sorted(ALIASES))})"
        ) from None
