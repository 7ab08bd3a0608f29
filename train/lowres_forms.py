"""MNIST digits seen through a coarse grid: the blocky, fat-stroked digits MNIST lacks.

A digit that reaches the model from an 8x8 scan (scikit-learn's digits), a small low-resolution
photo, or a fat brush on a small canvas has lost its thin gaps: the loop of a 4 fills in, a 1 is a
blob with a bump. MNIST's scanner never produced those. `lowres(x, y, n, seed)` turns n MNIST
training digits into such images: the digit is fitted into a 32x32 box, averaged over 4x4 blocks
to an 8x8 grid with 17 grey levels, smoothed back up and cut at a random level (lower levels give
fatter strokes), then normalised the way MNIST was.

Its source digits are MNIST's, not the dev set's (train/canvas_digits.py renders scikit-learn's),
so the dev set measures whether the model learnt the look, not the writers.
"""

import cv2
import numpy as np

from train.canvas_forms import mnist_normalise

WORK = 128  # smoothing resolution: 16 pixels per grid cell


def _coarse(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ys, xs = np.nonzero(digit > 30)
    ink = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    h, w = ink.shape
    # Most scanned forms stretch a digit to fill its box; some keep its width.
    wide = 32 if rng.random() < 0.5 else max(8, round(32 * w / h))
    box = np.zeros((32, 32), np.float32)
    fitted = cv2.resize(ink, (min(wide, 32), 32), interpolation=cv2.INTER_AREA)
    left = (32 - fitted.shape[1]) // 2
    box[:, left : left + fitted.shape[1]] = fitted > 0.5  # the scanner's binary bitmap
    pen = int(rng.integers(0, 4))  # many forms were filled in with a broad pen: 1 to 2 cells wide
    if pen:
        box = cv2.dilate(box, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pen + 1,) * 2))
    grid = cv2.resize(box, (8, 8), interpolation=cv2.INTER_AREA)
    return np.round(grid * 16) / 16  # 17 grey levels, as the 8x8 counts of 4x4 blocks


def render(grid: np.ndarray, rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    """An 8x8 grid of 0..1 as a 28x28 MNIST-style digit: cut into ink at a random level, or
    with `grey`, upscaled smoothly with its grey levels kept."""
    cells = np.pad(grid, 1)
    if grey:
        # A blurry small scan; the faintest cells drop out as the client's ink threshold does.
        big = cv2.resize(cells, (WORK * 10 // 8,) * 2, interpolation=cv2.INTER_LINEAR)
        big = np.where(big < 0.125 * big.max(), 0.0, big)
        return mnist_normalise((big / big.max() * 255).astype(np.uint8))
    big = cv2.resize(cells, (WORK * 10 // 8,) * 2, interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), WORK / rng.uniform(16, 32))
    # Relative to the brightest cell, so a thin digit's faint grid does not vanish.
    level = rng.uniform(0.25, 0.5) * big.max()
    ink = np.clip((big - level) / (0.1 * big.max()), 0.0, 1.0)
    return mnist_normalise((ink * 255).astype(np.uint8))


def lowres(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n coarse-grid versions of randomly chosen digits of (x, y): uint8 (n, 28, 28) and labels."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(y), size=n, replace=n > len(y))
    images = np.zeros((n, 28, 28), np.uint8)
    for i, j in enumerate(pick):
        r = np.random.default_rng((seed, int(j), i))
        images[i] = render(_coarse(x[j], r), r)
    return images, y[pick].astype(np.int64)
