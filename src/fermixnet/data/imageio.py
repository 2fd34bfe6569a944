"""Decoding one image file into RGB uint8, whatever its mode, depth or orientation.

Data sets in the wild hold grayscale, palette, RGBA, CMYK and 16-bit images next to ordinary RGB
JPEGs; every adapter goes through `read_rgb` so the model always sees (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# Modes whose samples are wider than 8 bits (16-bit PNG/TIFF grayscale, 32-bit int, float).
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageReadError(ValueError):
    """An image file exists but cannot be decoded (corrupt, truncated, not an image)."""


@dataclass(frozen=True)
class ImageInfo:
    """What `probe` learns about a file without converting it.

    Attributes:
        mode: PIL mode as stored (`RGB`, `L`, `P`, `RGBA`, `CMYK`, `I;16`, ...).
        width: width in pixels before EXIF rotation.
        height: height in pixels before EXIF rotation.
        format: container format reported by PIL (`JPEG`, `PNG`, ...).
    """

    mode: str
    width: int
    height: int
    format: str

    @property
    def kind(self) -> str:
        """A coarse label for reports: rgb, grayscale, palette, rgba, cmyk, 16-bit or other."""
        if self.mode in _WIDE_MODES:
            return "16-bit"
        return {
            "RGB": "rgb",
            "L": "grayscale",
            "1": "grayscale",
            "LA": "rgba",
            "RGBA": "rgba",
            "PA": "rgba",
            "P": "palette",
            "CMYK": "cmyk",
        }.get(self.mode, "other")


_DECODE_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
                  ValueError)  # fmt: skip


def decode_error(path: str | Path, err: BaseException) -> ImageReadError:
    """The error to raise when PIL fails on `path`: names the file and says what is wrong
    ("empty file", "not an image", or PIL's reason), never PIL's `<_io.BytesIO ...>`."""
    if isinstance(err, ImageReadError):
        return err
    if isinstance(err, UnidentifiedImageError):
        return ImageReadError(f"cannot decode image {path}: not an image (unknown file format)")
    return ImageReadError(f"cannot decode image {path}: {err}")


def check_not_empty(path: Path, data: bytes | None) -> None:
    size = len(data) if data is not None else path.stat().st_size
    if size == 0:
        raise ImageReadError(f"cannot decode image {path}: empty file (0 bytes)")


def is_image_file(path: str | Path) -> bool:
    """Whether the name ends in one of `IMAGE_EXTENSIONS` (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def pil_to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert any PIL image to an (H, W, 3) uint8 RGB array.

    16-bit and 32-bit samples are scaled to 0..255 (not clipped), alpha is dropped, CMYK and palette
    images go through PIL's own conversion.
    """
    if image.mode in _WIDE_MODES:
        wide = np.asarray(image)
        if image.mode == "F":
            gray = np.clip(wide, 0, 255).astype(np.uint8)
        else:
            # 16-bit data (PIL reads 16-bit PNGs as I;16 or I): map 0..65535 onto 0..255.
            gray = ((np.clip(wide.astype(np.int64), 0, 65535) * 255 + 32767) // 65535).astype(
                np.uint8
            )
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file into (H, W, 3) uint8 RGB, EXIF orientation applied.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: the file is not a decodable image (corrupt, truncated, unknown format).
    """
    path = Path(path)
    try:
        check_not_empty(path, None)
        with Image.open(path) as image:
            image.load()  # forces a full decode so truncated files fail here, not later
            image = ImageOps.exif_transpose(image)
            return pil_to_rgb_array(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except _DECODE_ERRORS as err:
        raise decode_error(path, err) from err


def probe(path: str | Path, data: bytes | None = None) -> ImageInfo:
    """Mode, size and format of an image, after a full decode (so truncation is detected).

    Args:
        path: the image file (named in errors).
        data: its bytes, when already read (then the file is not opened again).

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: the file is not a decodable image.
    """
    path = Path(path)
    try:
        check_not_empty(path, data)
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            info = ImageInfo(image.mode, image.width, image.height, image.format or "")
            image.load()
            return info
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except _DECODE_ERRORS as err:
        raise decode_error(path, err) from err


def resize_rgb(image: np.ndarray, size: tuple[int, int], method: str = "bilinear") -> np.ndarray:
    """Resize an (H, W, 3) uint8 array to `size` = (H, W) with PIL.

    PIL's bilinear/bicubic/lanczos filters widen their support when shrinking, so downscaling is
    antialiased.

    Raises:
        ValueError: unknown `method`.
    """
    filters = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "lanczos": Image.Resampling.LANCZOS,
        "nearest": Image.Resampling.NEAREST,
    }
    if method not in filters:
        raise ValueError(f"resize method must be one of {', '.join(filters)}, got {method!r}")
    height, width = size
    if image.shape[0] == height and image.shape[1] == width:
        return image
    pil = Image.fromarray(image).resize((width, height), filters[method])
    return np.asarray(pil, dtype=np.uint8)
