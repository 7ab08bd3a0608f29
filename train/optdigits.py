"""Optical Recognition of Handwritten Digits: real 8x8 scans of 30 writers, from data/optdigits/.

Writers in Istanbul filled in forms; each digit was cut out, fitted to a 32x32 bitmap and counted
over 4x4 blocks into an 8x8 grid of 0..16 (data/optdigits/README.md: source, licence, format).
The file here is the database's training set: its 30 writers. scikit-learn's `load_digits()` is
the database's test set, 13 other writers, and train/canvas_digits.py scores the model on them, so
training on these keeps that figure one of writers never seen, as each UJI fold is for its model.

`read()` returns the grids; `training_forms()` renders them as 28x28 MNIST-style training images,
the way train/lowres_forms.py renders MNIST digits seen through such a grid: cut into ink at a
random level, or a share of them kept in grey levels as a blurry small scan.
"""

from pathlib import Path

import numpy as np

from train.lowres_forms import render

OPTDIGITS_FILE = Path(__file__).resolve().parent.parent / "data" / "optdigits" / "optdigits.tra"
GRID = 8
LEVELS = 16  # each cell counts the ink pixels of a 4x4 block


class OptdigitsError(Exception):
    """The optdigits file cannot be read; the message says which line and why."""


def read(path: Path = OPTDIGITS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """Every digit of an optdigits file (64 counts and the digit per line, comma-separated):
    float32 grids (N, 8, 8) in 0..1 and int64 labels (N,)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise OptdigitsError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from e
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            values = [int(v) for v in line.split(",")]
        except ValueError:
            raise OptdigitsError(f"{path}:{number}: not a line of integers") from None
        if len(values) != GRID * GRID + 1:
            raise OptdigitsError(
                f"{path}:{number}: {len(values)} values, expected {GRID * GRID} counts and a digit"
            )
        if not all(0 <= v <= LEVELS for v in values[:-1]) or not 0 <= values[-1] <= 9:
            raise OptdigitsError(f"{path}:{number}: counts must be 0..{LEVELS}, the digit 0..9")
        rows.append(values)
    if not rows:
        raise OptdigitsError(f"{path}: no digits")
    table = np.array(rows, np.int64)
    grids = (table[:, :-1] / LEVELS).astype(np.float32).reshape(-1, GRID, GRID)
    return grids, table[:, -1]


def training_forms(
    grids: np.ndarray, labels: np.ndarray, n: int, seed: int = 0, grey: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """n renderings of the grids, each once before any twice: uint8 (n, 28, 28) and labels.
    A share `grey` keep the grid's grey levels; the others are cut into ink."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(len(labels)) for _ in range(-(-n // len(labels)))])[:n]
    images = np.zeros((n, 28, 28), np.uint8)
    for i, j in enumerate(pick):
        r = np.random.default_rng((seed, int(j), i))
        images[i] = render(grids[j], r, grey=r.random() < grey)
    return images, labels[pick].astype(np.int64)
