"""Real handwritten digits as the canvas sends them: a 280x280x4 uint8 RGBA image, white ink
(RGB 255) whose alpha is the ink coverage, on a transparent black background.

- `sklearn_digits`: scikit-learn's 1,797 real handwritten digits (13 writers, 8x8), upscaled onto
  the canvas at a random size and position.
- `strokes_canvas`, `uji_canvas`: real pen strokes (train/uji.py) drawn as the canvas draws them,
  at the size and pen width people use.

Training chooses each version's not-a-digit rule on them (train/run.py); the dev sets
(tests/devsets.py) score versions on them.
"""

from collections.abc import Iterator

import cv2
import numpy as np

from settings import CANVAS_SIZE
from train import uji

Sample = tuple[np.ndarray, int]


def paste(canvas: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """Max-blend `patch` into `canvas` at (top, left), clipped to the canvas."""
    h, w = patch.shape
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if t1 > t0 and l1 > l0:
        region = canvas[t0:t1, l0:l1]
        np.maximum(region, patch[t0 - top : t1 - top, l0 - left : l1 - left], out=region)


def place(patch: np.ndarray, rng: np.random.Generator, margin: int = 6) -> np.ndarray:
    """A canvas with `patch` at a random position that keeps it inside the canvas."""
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
    h, w = patch.shape
    top = int(rng.integers(margin, max(margin + 1, CANVAS_SIZE - h - margin)))
    left = int(rng.integers(margin, max(margin + 1, CANVAS_SIZE - w - margin)))
    paste(canvas, patch, top, left)
    return canvas


def crop_ink(ink: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return ink
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def sklearn_digits(
    seed: int = 0, limit: int | None = None, inked: bool = False
) -> Iterator[Sample]:
    """scikit-learn's `load_digits()`, upscaled to 90-230 px tall at a random canvas position.

    Its 8x8 images count ink pixels of 4x4 blocks of a 32x32 bitmap (0..16). Upscaled smoothly,
    they keep those counts as grey levels: a stroke fades at its edges and a loop that is a gap of
    one cell stays a darker dip. `inked=True` cuts the upscaled image at a level near half a cell
    (after smoothing over half a cell) into solid strokes with antialiased edges, closer to the
    canvas's look but harder: at 8x8 a closed cut fills the loop of many 4s and 9s.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target) if limit is None else min(limit, len(digits.target))
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        size = int(rng.integers(90, 231))
        cells = np.pad(digits.images[i].astype(np.float32) / 16.0, 1)
        ink = cv2.resize(cells, (size * 10 // 8,) * 2, interpolation=cv2.INTER_LINEAR)
        if inked:
            ink = cv2.GaussianBlur(ink, (0, 0), size / 24)
            threshold = rng.uniform(0.35, 0.5)
            ink = np.clip((ink - threshold) / 0.08, 0.0, 1.0)
        patch = crop_ink((ink * 255).astype(np.uint8))
        yield uji.to_rgba(place(patch, rng)), int(digits.target[i])


def uji_canvas(digit: uji.UjiDigit, rng: np.random.Generator) -> np.ndarray:
    """The digit on the canvas (`strokes_canvas`)."""
    return strokes_canvas(digit.strokes, rng)


def strokes_canvas(strokes: tuple[np.ndarray, ...], rng: np.random.Generator) -> np.ndarray:
    """Strokes on the canvas: the writer's own shapes, slants and stroke order; only the canvas
    varies: 120-230 px tall anywhere on it, with a pen of 10-32 px (the app's stroke slider starts
    at 22)."""
    size = rng.uniform(120, 230)
    margin = size / 2 + 6
    far = CANVAS_SIZE - margin
    centre = (rng.uniform(margin, far), rng.uniform(margin, far))
    return uji.to_rgba(uji.draw(strokes, size=size, pen=rng.uniform(10, 32), centre=centre))
