"""Dev sets that look like what a person draws on the canvas, not like MNIST.

Every generator yields `(canvas, label)` pairs, where `canvas` is what the browser sends: a
280x280x4 uint8 RGBA image, white ink (RGB 255) whose alpha is the ink coverage, on a transparent
black background. They are deterministic: item i is drawn from `np.random.default_rng((seed, i))`,
so a set is the same however much of it is read. Canvases are yielded one at a time because a
thousand of them take 300 MB.

- `sklearn_digits` (train/canvas_digits.py, which training reads too): scikit-learn's 1,797 real
  handwritten digits (13 writers, 8x8), upscaled onto the canvas; `inked=True` cuts them into
  solid ink.
- `continental_1`, `continental_7`: a 1 with a long flag and a foot, a 7 with a crossbar, drawn as
  jittered strokes with a round brush.
- `redrawn_mnist`: MNIST digits' skeletons redrawn with a round brush in a given style: `thin`,
  `thick`, `slant` or `small_corner` (and `plain`, a normal brush, as a control).
- `uji_digits`: the real pen strokes of the UJI writers (train/uji.py), each stroke drawn as the
  canvas draws it, at the size and pen width people use; scored by writer-disjoint folds.
- `nondigit_letters`, `doodles`: what is not a digit, kept out of training (train/nondigits.py):
  the dev writer's letters and symbols, the dev kinds of doodle, drawn as `uji_digits` are.
- `uploads`: MNIST digits on paper, as the upload page reads a file (not canvases): a `scan`, a
  `photo` with uneven light, that photo as a JPEG (`photo_jpeg`), a `cut_out` on transparency.
"""

from collections.abc import Iterator

import cv2
import numpy as np

from settings import CANVAS_SIZE
from train import nondigits, uji
from train.canvas_digits import Sample, crop_ink, paste, place, strokes_canvas, uji_canvas

# Stroke widths (pixels on the 280x280 canvas) of each redrawn-MNIST style, and the digit height.
STYLES = {
    "plain": {"width": (14, 22), "height": (150, 220)},
    "thin": {"width": (3, 6), "height": (150, 220)},
    "thick": {"width": (30, 42), "height": (170, 230)},
    "slant": {"width": (14, 22), "height": (150, 200)},
    "small_corner": {"width": (6, 10), "height": (45, 75)},
}


# --- continental forms drawn as strokes -----------------------------------------------------


def _jittered_polyline(points: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Resample a polyline into short segments and wobble them like a hand on a mouse or pad."""
    out = [points[0]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        steps = max(2, int(np.linalg.norm(b - a) / 12))
        for t in np.linspace(0, 1, steps + 1)[1:]:
            out.append(a + (b - a) * t)
    out = np.array(out, np.float64)
    # Smooth random wobble: cumulative noise, then pinned back so the corners stay recognisable.
    wobble = np.cumsum(rng.normal(0, jitter, out.shape), axis=0) * 0.5
    wobble -= np.linspace(wobble[0], wobble[-1], len(out))
    return out + wobble


def _draw_strokes(strokes: list[np.ndarray], width: int, rng: np.random.Generator) -> np.ndarray:
    """Draw strokes (in a unit-free frame) with a round brush, slant them, fit them on a canvas."""
    # Slant like handwriting: shear x by -y (positive shear leans the top to the right).
    shear = rng.uniform(-0.15, 0.35)
    strokes = [s.copy() for s in strokes]
    for s in strokes:
        s[:, 0] = s[:, 0] - shear * s[:, 1]
    everything = np.concatenate(strokes)
    lo = everything.min(axis=0)
    # Supersample 4x for antialiased edges, like the browser's canvas.
    k = 4
    pad = width
    size = (everything.max(axis=0) - lo + 2 * pad).astype(int) + 1
    big = np.zeros((size[1] * k, size[0] * k), np.uint8)
    for s in strokes:
        pts = np.round((s - lo + pad) * k * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(big, [pts], False, 255, width * k, cv2.LINE_AA, shift=4)
    patch = cv2.resize(big, (size[0], size[1]), interpolation=cv2.INTER_AREA)
    return place(crop_ink(patch), rng)


def _one_continental(rng: np.random.Generator) -> list[np.ndarray]:
    """A 1 with a long flag from its top down-left, and a foot (a horizontal base stroke)."""
    h = rng.uniform(130, 220)
    flag_len = h * rng.uniform(0.3, 0.55)
    flag_angle = np.deg2rad(rng.uniform(20, 50))  # below the horizontal, pointing down-left
    top = np.array([0.0, 0.0])
    flag_end = top + flag_len * np.array([-np.cos(flag_angle), np.sin(flag_angle)])
    bottom = np.array([rng.normal(0, 4), h])
    foot = h * rng.uniform(0.2, 0.35)
    jitter = rng.uniform(0.5, 2.0)
    body = _jittered_polyline(np.array([flag_end, top, bottom]), rng, jitter)
    base = np.array([bottom + [-foot, rng.normal(0, 3)], bottom + [foot, rng.normal(0, 3)]])
    return [body, _jittered_polyline(base, rng, jitter)]


def _seven_continental(rng: np.random.Generator) -> list[np.ndarray]:
    """A 7: a top bar, a long diagonal down to the left, and a crossbar through the diagonal."""
    h = rng.uniform(130, 220)
    w = h * rng.uniform(0.5, 0.8)
    jitter = rng.uniform(0.5, 2.0)
    start = np.array([0.0, rng.uniform(0, 0.12) * h])  # the bar may start with a small drop
    corner = np.array([w, 0.0])
    foot = np.array([w * rng.uniform(0.05, 0.45), h])
    strokes = []
    if rng.random() < 0.3:  # a little serif hanging down from the bar's start
        strokes.append(_jittered_polyline(np.array([start + [0, 0.15 * h], start]), rng, jitter))
    strokes.append(_jittered_polyline(np.array([start, corner, foot]), rng, jitter))
    mid = corner + (foot - corner) * rng.uniform(0.4, 0.6)
    half = w * rng.uniform(0.25, 0.45)
    tilt = rng.normal(0, 0.05) * half
    cross = np.array([mid + [-half, tilt], mid + [half, -tilt]])
    strokes.append(_jittered_polyline(cross, rng, jitter))
    return strokes


def continental_1(seed: int = 0, n: int = 300) -> Iterator[Sample]:
    for i in range(n):
        rng = np.random.default_rng((seed, 1, i))
        strokes = _one_continental(rng)
        yield uji.to_rgba(_draw_strokes(strokes, int(rng.integers(8, 28)), rng)), 1


def continental_7(seed: int = 0, n: int = 300) -> Iterator[Sample]:
    for i in range(n):
        rng = np.random.default_rng((seed, 7, i))
        strokes = _seven_continental(rng)
        yield uji.to_rgba(_draw_strokes(strokes, int(rng.integers(8, 28)), rng)), 7


# --- MNIST digits redrawn with a round brush ------------------------------------------------


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to a one-pixel-wide skeleton."""
    img = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = img
            # Neighbours P2..P9, clockwise from north.
            n = [
                p[:-2, 1:-1],
                p[:-2, 2:],
                p[1:-1, 2:],
                p[2:, 2:],
                p[2:, 1:-1],
                p[2:, :-2],
                p[1:-1, :-2],
                p[:-2, :-2],
            ]
            count = sum(x.astype(np.int32) for x in n)
            transitions = sum(
                ((n[j] == 0) & (n[(j + 1) % 8] == 1)).astype(np.int32) for j in range(8)
            )
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (p[1:-1, 1:-1] == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & c
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def redraw(digit: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 MNIST digit (0..255) redrawn as a canvas ink image in the given style."""
    spec = STYLES[style]
    height = int(rng.integers(*spec["height"]))
    width = int(rng.integers(*spec["width"]))
    # Skeleton at a working scale of 4x, where MNIST's strokes are 8-12 px wide.
    work = cv2.resize(digit.astype(np.float32) / 255.0, (112, 112), interpolation=cv2.INTER_CUBIC)
    skeleton = crop_ink(thin(work > 0.5).astype(np.uint8))
    if skeleton.sum() == 0:
        skeleton = crop_ink((work > 0.5).astype(np.uint8))
    scale = height / max(*skeleton.shape, 1)  # "height" is the longer side
    if style == "slant":
        # Tilt and shear: people lean digits much further than MNIST's writers.
        angle = rng.choice([-1, 1]) * rng.uniform(12, 25)
        shear = rng.uniform(-0.25, 0.25)
    else:
        angle, shear = rng.normal(0, 3), 0.0
    # Map skeleton pixels onto the canvas with the brush: 4x supersampled round strokes.
    k = 4
    ys, xs = np.nonzero(skeleton)
    pts = np.stack([xs, ys], axis=1).astype(np.float64) * scale
    pts[:, 0] -= shear * pts[:, 1]
    theta = np.deg2rad(angle)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    pts = pts @ rot.T
    pts -= pts.min(axis=0) - width
    size = (pts.max(axis=0) + width).astype(int) + 1
    big = np.zeros((size[1] * k, size[0] * k), np.uint8)
    # Join each skeleton pixel to its 8-neighbours so scaling up leaves no gaps.
    index = {(int(y), int(x)): i for i, (y, x) in enumerate(zip(ys, xs, strict=True))}
    fixed = np.round(pts * k * 16).astype(np.int32)
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
            j = index.get((int(y) + dy, int(x) + dx))
            if j is not None:
                cv2.line(big, tuple(fixed[i]), tuple(fixed[j]), 255, width * k, cv2.LINE_AA, 4)
        cv2.circle(big, tuple(fixed[i]), width * k // 2, 255, -1, cv2.LINE_AA, 4)
    patch = crop_ink(cv2.resize(big, (size[0], size[1]), interpolation=cv2.INTER_AREA))
    if style == "small_corner":
        # A small digit tucked into one of the corners, as when someone starts drawing there.
        canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE), np.uint8)
        h, w = patch.shape
        margin = int(rng.integers(4, 25))
        top = margin if rng.random() < 0.5 else CANVAS_SIZE - h - margin
        left = margin if rng.random() < 0.5 else CANVAS_SIZE - w - margin
        paste(canvas, patch, top, left)
        return canvas
    return place(patch, rng)


def redrawn_mnist(
    images: np.ndarray, labels: np.ndarray, style: str, seed: int = 0, n: int | None = None
) -> Iterator[Sample]:
    """MNIST digits (N, 28, 28) uint8 redrawn from their skeletons in `style` (see STYLES)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {sorted(STYLES)}")
    count = len(labels) if n is None else min(n, len(labels))
    for i in range(count):
        rng = np.random.default_rng((seed, sorted(STYLES).index(style), i))
        yield uji.to_rgba(redraw(images[i], style, rng)), int(labels[i])


# --- real pen strokes: the UJI writers ------------------------------------------------------


def uji_digits(seed: int = 0) -> Iterator[Sample]:
    """Every UJI writer's digits (train/uji.py's `read`, in file order) on the canvas, as a person
    draws them in the app (`uji_canvas`); a model is scored on the writers of the fold it never
    saw."""
    for i, digit in enumerate(uji.read()):
        yield uji_canvas(digit, np.random.default_rng((seed, 10, i))), digit.digit


# --- what is not a digit: the dev writer's letters and symbols, the dev kinds of doodle ---------


def nondigit_letters(seed: int = 0) -> Iterator[tuple[np.ndarray, str]]:
    """The dev writer's letters and symbols that are not look-alikes (train/nondigits.py), on
    the canvas as people draw digits there; with the character."""
    for i, char in enumerate(nondigits.letters(dev=True)):
        yield strokes_canvas(char.strokes, np.random.default_rng((seed, 20, i))), char.char


def doodles(seed: int = 0, per_kind: int = 100) -> Iterator[tuple[np.ndarray, str]]:
    """`per_kind` doodles of each dev kind (train/nondigits.py's DEV_KINDS) on the canvas; with
    the kind."""
    for k, kind in enumerate(nondigits.DEV_KINDS):
        for i in range(per_kind):
            rng = np.random.default_rng((seed, 30 + k, i))
            yield strokes_canvas(nondigits.doodle(kind, rng, []), rng), kind


# --- uploads: a digit on paper, as the upload page has it once the file is read ---------------

UPLOAD_STYLES = ("scan", "photo", "photo_jpeg", "cut_out")


def uploads(
    images: np.ndarray, labels: np.ndarray, style: str, seed: int = 0, n: int | None = None
) -> Iterator[Sample]:
    """MNIST digits (N, 28, 28) uint8 enlarged 4-9x onto 280x280 paper, as tests/test_preprocess.py
    makes its photos and scans. Not canvases: the image a file holds. `scan`: black ink on white
    paper, RGB; `photo`: pencil on grey paper lit from one side (a gradient of up to 100 levels),
    grey; `photo_jpeg`: that photo saved as a JPEG (quality 60-90) and read back; `cut_out`:
    black ink, opaque where drawn, on a transparent background, RGBA."""
    import io

    from PIL import Image

    if style not in UPLOAD_STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {UPLOAD_STYLES}")
    count = len(labels) if n is None else min(n, len(labels))
    for i in range(count):
        rng = np.random.default_rng((seed, 100 + UPLOAD_STYLES.index(style), i))
        digit = crop_ink(images[i])
        scale = rng.uniform(4, 9)
        big = cv2.resize(digit, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        ink = place(big, rng).astype(np.float32) / 255
        if style == "scan":
            paper, pen = rng.uniform(215, 250), rng.uniform(10, 60)
            grey = np.round(paper - ink * (paper - pen)).astype(np.uint8)
            yield np.dstack([grey] * 3), int(labels[i])
        elif style == "cut_out":
            rgba = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), np.uint8)
            rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
            yield rgba, int(labels[i])
        else:
            bright, dim = rng.uniform(200, 240), rng.uniform(120, 180)
            angle = rng.uniform(0, 2 * np.pi)  # the light comes from this side
            ys, xs = np.mgrid[0:CANVAS_SIZE, 0:CANVAS_SIZE] / (CANVAS_SIZE - 1) - 0.5
            along = (xs * np.cos(angle) + ys * np.sin(angle)) / np.sqrt(0.5) + 0.5
            light = bright + (dim - bright) * np.clip(along, 0, 1)
            photo = np.clip(light - ink * 255 * rng.uniform(0.4, 0.7), 0, 255).astype(np.uint8)
            if style == "photo_jpeg":
                data = io.BytesIO()
                Image.fromarray(photo).save(data, "JPEG", quality=int(rng.integers(60, 91)))
                photo = np.asarray(Image.open(io.BytesIO(data.getvalue())))
            yield photo, int(labels[i])
