"""MNIST digits redrawn with a round pen: MNIST's shapes with the even stroke of a canvas.

A scanned pencil stroke swells and fades; a canvas pen draws every stroke the same width with
round ends. `redrawn(x, y, n, seed)` thins n MNIST training digits to their one-pixel skeleton and
draws that skeleton again with a round pen of random width (every pixel within the pen's radius
of the skeleton is ink, with an antialiased edge), then normalises like MNIST.

The dev sets' redrawn MNIST (train/devsets.py) is drawn from MNIST test digits by other code
(polylines between skeleton pixels on a canvas, then the client's preprocessing); these forms
come from training digits only.
"""

import cv2
import numpy as np

from train.canvas_forms import mnist_normalise

WORK = 56  # thinning and drawing resolution: 2x MNIST's


def _neighbour_table(first_pass: bool) -> np.ndarray:
    """For each of the 256 neighbourhoods (bit k = neighbour k, clockwise from north), whether
    Zhang and Suen's thinning removes the centre pixel in this sub-iteration."""
    table = np.zeros(256, bool)
    for code in range(256):
        n = [(code >> k) & 1 for k in range(8)]  # P2..P9
        count = sum(n)
        transitions = sum(n[k] == 0 and n[(k + 1) % 8] == 1 for k in range(8))
        p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
        if first_pass:
            side = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        else:
            side = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
        table[code] = 2 <= count <= 6 and transitions == 1 and side
    return table


_TABLES = (_neighbour_table(True), _neighbour_table(False))
# Offsets (dy, dx) of neighbours P2..P9, clockwise from north.
_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def skeleton(binary: np.ndarray) -> np.ndarray:
    """A boolean image thinned to one-pixel-wide lines (Zhang-Suen, as a lookup table)."""
    img = np.pad(binary.astype(np.uint8), 1)
    h, w = binary.shape
    while True:
        changed = False
        for table in _TABLES:
            code = np.zeros((h, w), np.int32)
            for bit, (dy, dx) in enumerate(_OFFSETS):
                code |= img[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w].astype(np.int32) << bit
            remove = (img[1:-1, 1:-1] == 1) & table[code]
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def redraw(digit: np.ndarray, pen: float) -> np.ndarray:
    """One uint8 28x28 digit's skeleton drawn with a round pen `pen` pixels wide at WORK scale."""
    work = cv2.resize(digit.astype(np.float32) / 255.0, (WORK, WORK), interpolation=cv2.INTER_CUBIC)
    lines = skeleton(work > 0.5)
    if not lines.any():
        return digit
    pad = int(pen) + 2
    lines = np.pad(lines, pad)
    # Distance of every pixel to the skeleton; ink within the pen's radius, a pixel of soft edge.
    distance = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, 5)
    ink = np.clip(pen / 2 + 0.5 - distance, 0.0, 1.0)
    return mnist_normalise((ink * 255).astype(np.uint8))


def redrawn(x: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n randomly chosen digits of (x, y) redrawn with pens from a hairline to a marker (relative
    to the digit: after the 20-pixel fit, about 1 to 4.5 pixels wide)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(y), size=n, replace=n > len(y))
    images = np.zeros((n, 28, 28), np.uint8)
    for i, j in enumerate(pick):
        r = np.random.default_rng((seed, int(j), i))
        images[i] = redraw(x[j], pen=r.uniform(2.0, 9.0))
    return images, y[pick].astype(np.int64)
