"""How a data set frames its faces, so inference can crop new faces the same way.

A framing says where a face's five landmarks (fermixnet's order: eye on the image's left, eye on
the image's right, nose tip, mouth corners left and right) sit in a training image, as fractions
of the image side, and whether faces are turned upright:

- ``template``: aligned by a similarity warp (rotation included) onto a template; RAF-DB's
  aligned crops (:data:`RAFDB_TEMPLATE`, our estimate, see ``inference/align.py``).
- ``box``: an upright square around the face: the *face box* grown by ``margin`` of its side on
  each side (FER2013 and FERPlus: OpenCV face boxes; AffectNet: its given face box). The face box
  is, by definition, the square in which the five landmarks sit at :data:`BOX_TEMPLATE`: where
  they sit, on average, in the OpenCV Haar box of a face (the boxes FER2013 was cut from). So a
  face box is computed from any detector's landmarks, a Haar box is a face box as it is, and
  every detector gives the same crop of a face (benchmarks/detector_bench.py measures how
  closely; tests/test_framing.py holds it).
- ``as_given``: unknown (a user's folder); inference keeps its behaviour of earlier versions
  (alignment to the checkpoint's template, or RAF-DB's).

Adapters declare theirs at registration (``@register_dataset("ferplus", framing="box:0.1")``);
a spec's ``framing=`` option overrides it; checkpoints record it in ``meta.json`` (key
``framing``), and ``fermixnet predict``, ``serve`` and exported models reproduce it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Fractions of the crop side (x, y) for a 100x100 RAF-DB style crop; scaled to any input size.
RAFDB_TEMPLATE: np.ndarray = np.array(
    [
        [0.335, 0.405],  # eye, image left
        [0.665, 0.405],  # eye, image right
        [0.500, 0.580],  # nose tip
        [0.370, 0.745],  # mouth corner, image left
        [0.630, 0.745],  # mouth corner, image right
    ],
    dtype=np.float64,
)
# Where the five landmarks (YuNet's convention, fermixnet.inference.yunet) sit in an OpenCV Haar
# face box (haarcascade_frontalface_default), as fractions of its side: the mean over 96 faces
# found by both (40 of a real photograph, matplotlib's Grace Hopper, mirrored, turned up to 8
# degrees, 80-200 px; 56 drawn and generated ones), mirrored to be symmetric; per face the points
# scatter by 0.02-0.03 of the side across and 0.05 along (Haar's boxes jitter vertically).
# `python benchmarks/detector_bench.py --calibrate --scenes 20` prints it. Wider-set eyes and
# mouth than RAF-DB's template: a Haar box is a little tighter around the features.
BOX_TEMPLATE: np.ndarray = np.array(
    [
        [0.323, 0.405],  # eye, image left
        [0.677, 0.405],  # eye, image right
        [0.500, 0.592],  # nose tip
        [0.351, 0.744],  # mouth corner, image left
        [0.649, 0.744],  # mouth corner, image right
    ],
    dtype=np.float64,
)
# FER2013 (and FERPlus, its relabelling) was cropped from OpenCV face boxes, corrected by hand
# (Goodfellow et al. 2013, "Challenges in representation learning", Sec. 3.1); its 48 px faces
# show the hairline and the chin with a little room: our estimate is the face box grown by a
# tenth of its side on each side (docs/data.md; `predict --framing box:M` tries others).
FER2013_FRAMING = "box:0.1"
KINDS: tuple[str, ...] = ("template", "box", "as_given")
_ALIASES = {"as-given": "as_given", "none": "as_given", "aligned": "template"}


@dataclass(frozen=True)
class Framing:
    """Where the five landmarks sit in a training image, and whether faces are upright.

    Attributes:
        kind: ``template`` (similarity warp with rotation), ``box`` (upright square, no
            rotation) or ``as_given`` (unknown; inference behaves as before framings existed).
        margin: each side grown by this fraction of the face's side (``box``; 0 for a template).
        template: (5, 2) landmark fractions in the face box or crop; None: :data:`BOX_TEMPLATE`
            for a box, :data:`RAFDB_TEMPLATE` otherwise.
    """

    kind: str = "as_given"
    margin: float = 0.0
    template: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"framing kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not -0.25 < self.margin <= 2.0:
            raise ValueError(f"framing margin must be in (-0.25, 2], got {self.margin}")
        if self.template is not None and np.asarray(self.template).shape != (5, 2):
            raise ValueError(
                f"framing template must be 5 (x, y) points, got shape "
                f"{np.asarray(self.template).shape}"
            )

    @property
    def upright(self) -> bool:
        """True when faces are cropped without rotation (a box)."""
        return self.kind == "box"

    def points(self) -> np.ndarray:
        """(5, 2) landmark positions as fractions of the crop side (margin applied)."""
        if self.template is not None:
            t = np.asarray(self.template, np.float64)
        else:
            t = BOX_TEMPLATE if self.kind == "box" else RAFDB_TEMPLATE
        return (t + self.margin) / (1.0 + 2.0 * self.margin)

    def to_meta(self) -> dict[str, object]:
        """JSON-friendly form stored in ``meta.json`` under ``framing``."""
        out: dict[str, object] = {"kind": self.kind, "margin": self.margin}
        if self.template is not None:
            out["template"] = [list(map(float, p)) for p in self.template]
        return out

    def __str__(self) -> str:
        text = f"box:{self.margin:g}" if self.kind == "box" else self.kind
        return text + (" (own template)" if self.template is not None else "")

    @classmethod
    def from_meta(cls, meta: Mapping[str, object]) -> Framing:
        """Inverse of :meth:`to_meta`.

        Raises:
            ValueError: a missing or bad field, naming it.
        """
        if not isinstance(meta, Mapping) or "kind" not in meta:
            raise ValueError(f"meta.json 'framing' must be an object with 'kind', got {meta!r}")
        tmpl = meta.get("template")
        return cls(
            kind=str(meta["kind"]),
            margin=float(meta.get("margin", 0.0)),  # type: ignore[arg-type]
            template=None if tmpl is None else _points(tmpl),  # type: ignore[arg-type]
        )


def parse_framing(text: str | Framing) -> Framing:
    """A framing from its spec text: ``template``, ``box``, ``box:<margin>`` or ``as_given``.

    Raises:
        ValueError: naming the text and the accepted forms.
    """
    if isinstance(text, Framing):
        return text
    kind, _, arg = str(text).strip().lower().partition(":")
    kind = _ALIASES.get(kind, kind)
    try:
        if kind == "box":
            return Framing("box", margin=float(arg) if arg else 0.0)
        if kind in KINDS and not arg:
            return Framing(kind)
    except ValueError as err:
        raise ValueError(f"framing={text!r}: {err}") from None
    raise ValueError(
        f"framing={text!r}: expected template, box, box:<margin> (e.g. box:0.1) or as_given"
    )


def _points(value: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    return tuple((float(x), float(y)) for x, y in value)
