"""Continental digit forms MNIST lacks, drawn as MNIST-style 28x28 training images.

MNIST's writers were American: its 1 is a bare stroke and its 7 has no crossbar. Many people
write a 1 with a long flag and a foot, and a 7 with a bar through its stem; a model that never saw
them calls such a 1 a 7 or a 2. `continental(n, seed)` draws n such digits (half 1s, half 7s) as
strokes with a round pen, normalised the way MNIST was (fit into a 20x20 box, centre of mass at
the centre of the 28x28 field), as uint8 white-on-black images with their labels.

This is deliberately not the dev set's generator (tests/devsets.py draws its own, on a canvas),
so the dev set measures whether the forms generalise, not whether one generator was memorised.
"""

import cv2
import numpy as np

WORK = 96  # drawing resolution before the MNIST-style fit


def _stroke(points: list[tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
    """A slightly bent polyline through `points` (x, y in 0..1 units of the digit's height)."""
    pts = np.array(points, np.float64)
    out = [pts[0]]
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        # One bent midpoint per segment: a hand never draws a perfectly straight line.
        mid = (a + b) / 2 + rng.normal(0, 0.02, 2)
        out += [mid, b]
    return np.array(out)


def _one(rng: np.random.Generator) -> list[np.ndarray]:
    lean = rng.uniform(-0.05, 0.2)  # x offset of the top relative to the bottom
    has_foot = rng.random() < 0.8  # most continental 1s have a foot; some only the flag
    # Without a foot, only a short, steep flag keeps a 1 from reading as a 7.
    flag = rng.uniform(0.2, 0.5) if has_foot else rng.uniform(0.15, 0.3)
    drop = rng.uniform(0.1, 0.35) if has_foot else rng.uniform(0.2, 0.35)
    top = (0.5 + lean, 0.0)
    strokes = [_stroke([(top[0] - flag, drop), top, (0.5, 1.0)], rng)]
    if has_foot:
        foot = rng.uniform(0.15, 0.35)
        strokes.append(_stroke([(0.5 - foot, 1.0), (0.5 + foot, 1.0 + rng.normal(0, 0.02))], rng))
    return strokes


def _seven(rng: np.random.Generator) -> list[np.ndarray]:
    width = rng.uniform(0.45, 0.8)
    bottom_x = rng.uniform(0.0, 0.4) * width
    start = (0.0, rng.uniform(0.0, 0.15))
    corner = (width, rng.normal(0, 0.03))
    strokes = [_stroke([start, corner, (bottom_x, 1.0)], rng)]
    t = rng.uniform(0.35, 0.6)
    mid = np.array(corner) + t * (np.array([bottom_x, 1.0]) - np.array(corner))
    half = rng.uniform(0.12, 0.3)
    strokes.append(_stroke([tuple(mid - [half, 0]), tuple(mid + [half, rng.normal(0, 0.03)])], rng))
    return strokes


# Which drawn form stands for each digit, drawn in turn.
FORMS = {1: _one, 7: _seven}


def _render(strokes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Draw strokes with a round pen and normalise like MNIST: 20x20 box, centre of mass centred."""
    shear = rng.uniform(-0.2, 0.3)
    scale = WORK * 0.7
    pen = int(rng.integers(6, 14))  # 1.3 to 3 px after the fit: MNIST's range
    canvas = np.zeros((WORK * 2, WORK * 2), np.uint8)
    for s in strokes:
        s = s.copy()
        s[:, 0] -= shear * (s[:, 1] - 0.5)
        pts = np.round((s * scale + WORK / 2) * 16).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, pen, cv2.LINE_AA, shift=4)
    return mnist_normalise(canvas)


def mnist_normalise(canvas: np.ndarray) -> np.ndarray:
    """Ink of any size -> uint8 28x28 as MNIST was made: 20x20 box, centre of mass centred."""
    ys, xs = np.nonzero(canvas)
    digit = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    h, w = digit.shape
    k = 20 / max(h, w)
    small = cv2.resize(digit, (max(1, round(w * k)), max(1, round(h * k))), cv2.INTER_AREA)
    out = np.zeros((28, 28), np.float32)
    total = small.sum()
    cy = (np.arange(small.shape[0]) * small.sum(axis=1)).sum() / total
    cx = (np.arange(small.shape[1]) * small.sum(axis=0)).sum() / total
    top = int(np.clip(round(14 - cy), 0, 28 - small.shape[0]))
    left = int(np.clip(round(14 - cx), 0, 28 - small.shape[1]))
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return np.clip(out / max(out.max(), 1e-6) * 255, 0, 255).astype(np.uint8)


def continental(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n continental digits, 1 and 7 in turn: uint8 (n, 28, 28) images and int64 labels."""
    digits = tuple(FORMS)
    images = np.zeros((n, 28, 28), np.uint8)
    labels = np.array([digits[i % len(digits)] for i in range(n)], np.int64)
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        images[i] = _render(FORMS[int(labels[i])](rng), rng)
    return images, labels
