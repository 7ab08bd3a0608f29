"""Find the ink in a drawing, photo or scan and cut it into digits, as the model's input.

The model turns each digit into what it was trained on (MNIST's 28x28 normalisation) inside its
own graph (export/image_preprocessing.py); what it cannot do with one image in and one digit out
is cut a number into its digits and leave stray dots out. That is done here: `digit_crops` gives
each digit's ink, cropped, for the `predict_image` signature.
"""

import io
import itertools

import cv2
import numpy as np
from PIL import Image, ImageOps

# What counts as ink is shared with the model's graph, which must find the same ink in a crop.
from settings import (
    INK_LEVEL,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_CONTRAST,
    MIN_PHOTO_PIXELS,
    SMOOTH_GRID,
    SMOOTH_WINDOW,
    UNEVEN_BORDER,
)

# Background pixels around each digit's crop: the model reads the background from the border.
CROP_MARGIN = 2
# Photos are shrunk to this first: digits need far fewer pixels. A crop with its margins is then
# within the model's own limit (MAX_SIDE), so that the model never shrinks a crop sent from here.
MAX_UPLOAD_SIDE = MAX_SIDE - 2 * CROP_MARGIN
# What an upload may be: the formats the model's predict_image signature sizes before decoding.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# A piece of ink this small next to the largest digit is a stray dot, not part of the number.
STRAY_AREA, STRAY_SIZE = 0.08, 0.3
# Pieces that overlap horizontally, or are closer than this (of the taller one's height), belong
# to one digit, such as the two strokes of a 4 or the flag of a 5. Digits of a number therefore
# need a visible gap between them.
SAME_DIGIT_GAP = 0.05


class ImageError(ValueError):
    """An image that is not read; the message is one line a person can act on."""


def read_image(data: bytes, name: str = "the image") -> np.ndarray:
    """An image file (PNG, JPEG, GIF, BMP, WebP) as a uint8 RGB or RGBA array, upright, shrunk to
    at most MAX_UPLOAD_SIDE a side. An image of more than MAX_PIXELS is refused from its header,
    before it is decoded (a small file can hold a huge image)."""
    unreadable = f"{name} is not an image that can be read (PNG or JPEG)"
    try:
        image = _open_image(data)
    except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
        raise ImageError(unreadable) from e
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is too large: {width * height:,} pixels, at most {MAX_PIXELS:,}")
    try:
        image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
        image.thumbnail((MAX_UPLOAD_SIDE, MAX_UPLOAD_SIDE))
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(unreadable) from e


def _open_image(data: bytes) -> Image.Image:
    """The image with its header read and its pixels not yet decoded. PIL refuses to open one of
    twice its own limit; opened again without that limit, its size can be told to the person."""
    try:
        return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def digit_crops(image: np.ndarray, split: bool = True) -> list[np.ndarray]:
    """Each digit's ink, left to right, as a uint8 white-on-black crop with a margin of black;
    [] when the image holds no ink. split=False: all the ink as one digit (stray dots left out).

    A crop holds only its own digit's strokes and their anti-aliased edges, never a neighbour's.
    """
    ink = ink_map(image)
    if ink is None:
        return []
    groups = digit_groups(ink)
    if not split and groups:
        groups = [np.logical_or.reduce(groups)]
    return [_crop(ink, group) for group in groups]


def _crop(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ys, xs = np.nonzero(mask)
    digit = np.where(near, ink, 0)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    # Each digit at its own contrast, as the model reads any image (a lighter digit next to a dark
    # one gets the whole range too). To 0..255 such that the graph finds the same strokes: with
    # v = floor(255 x + 0.25), v / 255 >= INK_LEVEL exactly when x >= INK_LEVEL (255 * 0.25 =
    # 63.75), the faintest ink kept stays above INK_LEVEL / 2, and the peak, 1, is 255.
    levels = np.floor(digit / digit.max() * 255 + 0.25).astype(np.uint8)
    return np.pad(levels, CROP_MARGIN)


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 grey, RGB or RGBA image as PNG bytes: a digit's crop, or a drawing to store."""
    if image.ndim == 3 and image.shape[2] in (3, 4):  # OpenCV writes BGR(A)
        image = cv2.cvtColor(
            image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        )
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return data.tobytes()


def ink_map(image: np.ndarray) -> np.ndarray | None:
    """Ink intensity in 0..1 (float32, white ink on black), or None when there is no ink."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected a grayscale, RGB or RGBA image, got shape {image.shape}")
    if image.size == 0:
        return None
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")

    if image.ndim == 3 and image.shape[2] == 4 and image[..., 3].min() < 255:
        # Transparent background (a canvas without background colour, a PNG cut-out): whatever
        # is opaque is ink, whatever its colour.
        gray = image[..., 3].astype(np.float32)
    elif image.ndim == 3:
        gray = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32)
    else:
        gray = image.astype(np.float32)

    # The background is what the border mostly is: light paper means dark ink, so invert.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    uneven = np.percentile(np.abs(border - background), 90) > UNEVEN_BORDER
    if background > 127:
        gray, background = 255 - gray, 255 - background
    ink = np.clip(gray - background, 0, None)
    if uneven and ink.size > MIN_PHOTO_PIXELS:
        # A photo's background is rarely even: remove what varies slowly (lighting), keep strokes.
        ink = np.clip(ink - _slow_background(ink), 0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        return None
    ink /= peak
    ink[ink < INK_LEVEL / 2] = 0
    return ink


def _slow_background(ink: np.ndarray) -> np.ndarray:
    """A smooth estimate of uneven lighting: a wide median of the image, zero on a clean canvas."""
    small = cv2.resize(ink, (SMOOTH_GRID, SMOOTH_GRID), interpolation=cv2.INTER_AREA)
    smooth = np.clip(small, 0, 255).astype(np.uint8)
    smooth = cv2.medianBlur(smooth, SMOOTH_WINDOW).astype(np.float32)
    return cv2.resize(smooth, (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_LINEAR)


def digit_groups(ink: np.ndarray) -> list[np.ndarray]:
    """Masks of the separate digits, left to right, stray dots dropped."""
    binary = (ink >= INK_LEVEL).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    # Boxes as [x0, x1, y0, y1, area, [component ids]]; label 0 is the background.
    pieces = sorted(
        ([x, x + w, y, y + h, area, [i]] for i, (x, y, w, h, area) in enumerate(stats[1:], 1)),
        key=lambda p: p[0],
    )

    merged = True
    while merged:  # merging widens a box, which may reach the next piece
        merged = False
        for a, b in itertools.combinations(range(len(pieces)), 2):
            pa, pb = pieces[a], pieces[b]
            overlap = min(pa[1], pb[1]) - max(pa[0], pb[0])
            height = max(pa[3] - pa[2], pb[3] - pb[2])
            if overlap >= -SAME_DIGIT_GAP * height:
                pieces[a] = [
                    min(pa[0], pb[0]),
                    max(pa[1], pb[1]),
                    min(pa[2], pb[2]),
                    max(pa[3], pb[3]),
                    pa[4] + pb[4],
                    pa[5] + pb[5],
                ]
                del pieces[b]
                merged = True
                break

    # Merging keeps the pieces in order: a merged box starts where its left piece did.
    largest_area = max((p[4] for p in pieces), default=0)
    tallest = max((max(p[1] - p[0], p[3] - p[2]) for p in pieces), default=0)
    return [
        np.isin(labels, ids)
        for x0, x1, y0, y1, area, ids in pieces
        if area >= STRAY_AREA * largest_area or max(x1 - x0, y1 - y0) >= STRAY_SIZE * tallest
    ]
