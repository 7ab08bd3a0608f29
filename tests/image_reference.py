"""The Python (OpenCV) version of export/image_preprocessing.py: how the client turned a drawing
into an MNIST digit before the model took that over. Nothing serves from it, and versions without
predict_image are no longer made; it stays because tests still need it: it is the oracle that
tests/test_image_preprocessing.py checks the graph against (OpenCV's own resampling and contours),
and tests/test_preprocess.py and tests/test_train_feedback.py make with it the digits the app gets
from predict_image. `python -m bench.accuracy_bench` and bench/feedback_bench.py read the dev sets
through it, as every accuracy figure in bench/RESULTS.md was measured.

MNIST's own normalisation (LeCun et al.): the digit's bounding box is scaled to fit a 20x20 box,
keeping its aspect ratio, with anti-aliasing, then placed in a 28x28 field so that its centre of
mass sits at the centre. White ink on black, values 0..1.
"""

import cv2
import numpy as np

from client.preprocess import digit_groups, ink_map
from export.image_preprocessing import (
    COM_STEPS,
    DIGIT_BOX,
    MIN_EVEN_SIDE,
    MNIST_SIZE,
    TARGET_STROKE,
    THICK_STROKE,
    THIN_STROKE,
)
from settings import INK_LEVEL


def to_mnist(image: np.ndarray) -> np.ndarray | None:
    """One digit as a (28, 28) float32 array in 0..1, or None when the image holds no ink.

    Accepts an RGBA, RGB or grayscale uint8 image of any size, light-on-dark or dark-on-light.
    All its pieces of ink are one digit, stray dots left out.
    """
    ink = ink_map(image)
    if ink is None:
        return None
    groups = digit_groups(ink)
    if not groups:
        return None
    return normalise(ink, np.logical_or.reduce(groups))


def image_to_mnist(image: np.ndarray) -> np.ndarray | None:
    """What the graph makes of a whole image: all its ink is one digit, stray dots included."""
    ink = ink_map(image)
    if ink is None:
        return None
    return normalise(ink, ink >= INK_LEVEL)


def split_digits(image: np.ndarray) -> list[np.ndarray]:
    """The digits of a number, left to right, each as to_mnist would give it; [] when no ink."""
    ink = ink_map(image)
    if ink is None:
        return []
    return [normalise(ink, group) for group in digit_groups(ink)]


def normalise(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ink under `mask` as an MNIST digit: 20x20 box, anti-aliased, centre of mass centred."""
    # Keep anti-aliased edges next to the strokes, drop everything else.
    near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    digit = np.where(near, ink, 0).astype(np.float32)
    ys, xs = np.nonzero(mask)
    digit = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    digit = even_strokes(digit)

    height, width = digit.shape
    scale = DIGIT_BOX / max(height, width)
    new_w = max(1, round(width * scale))
    new_h = max(1, round(height * scale))
    # INTER_AREA averages every source pixel under a target pixel: anti-aliasing when shrinking.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(digit, (new_w, new_h), interpolation=interpolation)
    small = np.clip(small, 0, None)
    if small.max() > 0:
        small /= small.max()

    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    cy, cx = centre_of_mass(small)
    # Whole-pixel shift as MNIST did (keeps strokes sharp), kept inside the field so no ink is lost.
    top = int(np.clip(round(MNIST_SIZE / 2 - cy), 0, MNIST_SIZE - new_h))
    left = int(np.clip(round(MNIST_SIZE / 2 - cx), 0, MNIST_SIZE - new_w))
    out[top : top + new_h, left : left + new_w] = small
    return np.clip(out, 0, 1)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    if total == 0:
        return image.shape[0] / 2, image.shape[1] / 2
    ys, xs = np.indices(image.shape)
    # In pixel-index units, as MNIST's centring: its digits' centres of mass average (14.0, 14.0).
    cy, cx = float((ys * image).sum() / total), float((xs * image).sum() / total)
    return float(np.round(cy * COM_STEPS) / COM_STEPS), float(np.round(cx * COM_STEPS) / COM_STEPS)


def stroke_width(binary: np.ndarray) -> float:
    """2 * area / perimeter: a stroke of length L and width w has area L*w and perimeter about
    2L. 0 when there is no outline."""
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2 * float(binary.sum()) / perimeter if perimeter else 0.0


def even_strokes(digit: np.ndarray) -> np.ndarray:
    """Thicken hairlines and thin out marker strokes towards MNIST's stroke width."""
    binary = (digit >= INK_LEVEL).astype(np.uint8)
    side = max(digit.shape)
    if side < MIN_EVEN_SIDE:
        return digit
    width = stroke_width(binary)
    if width == 0:
        return digit
    ratio = width / side
    if ratio < THIN_STROKE:
        grow = max(1, round((TARGET_STROKE * side - width) / 2))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        # Pad first so a dilated stroke is not cut at the crop's edge.
        padded = cv2.copyMakeBorder(digit, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0)
        return cv2.dilate(padded, kernel)
    if ratio > THICK_STROKE:
        shrink = max(1, round((width - TARGET_STROKE * side) / 2))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
        thinner = cv2.erode(digit, kernel)
        # Never erode a digit away: keep the original when thinning would remove most of it.
        if (thinner >= INK_LEVEL).sum() >= 0.2 * binary.sum():
            return thinner
    return digit
