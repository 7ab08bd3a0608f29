"""What is not a digit: real letters and symbols, and the doodles people draw on a digit canvas.

The model learns "not a digit" as one more class (settings.NOT_A_DIGIT) from three sources:

- `letters`: the UJI writers' letters, accented letters, punctuation and symbols
  (data/uji/ujinondigits.txt, train/uji.py's `read_chars`), without the look-alikes: characters
  that people also write as digits (`LOOK_ALIKES`). A drawn O is a fine 0, so the model is not
  taught to refuse it; those characters are neither training negatives nor dev negatives.
- `font_letter`: the same letters and symbols in OpenCV's Hershey stroke fonts, printed and
  cursive, for hands beyond the two writers'.
- `doodles`: shapes drawn by code as strokes (`KINDS`): scribbles, zigzags, spirals, stars,
  houses, smileys, ..., two digits written into one another where one was expected, and real
  3s, 4s and 7s mirrored or turned upside down.

The dev set is kept out of training for good: the writer `DEV_WRITER` and the doodle kinds
`DEV_KINDS` (tests/devsets.py draws them on the canvas; bench/reject_bench.py scores them).
`training_forms()` draws the rest as 28x28 MNIST-style images, as train/uji.py draws digits.
"""

import string

import cv2
import numpy as np

from settings import NOT_A_DIGIT
from train import uji
from train.canvas_forms import mnist_normalise

# Characters that people also write as digits, left out of the negatives: O o D Q and a ring are
# 0; l I i and the straight marks ' , ( ) ! ¡ are 1 once fitted to a digit's box; Z z are 2, S s
# are 5, b G are 6, B is 8, g q are 9. Accented O and I are a 0 or a 1 with a stray mark, which
# a person drawing a digit also makes.
LOOK_ALIKES = frozenset("OoDQºlIi',()!¡ZzSsbGBgqóÓíÍ")
DEV_WRITER = "trn_UJI_W03"  # of the three writers with letters; the other two are trained on


def letters(dev: bool = False) -> list[uji.UjiChar]:
    """The letters and symbols that are not look-alikes: of the dev writer, or of the others."""
    chars = [c for c in uji.read_chars() if c.char not in LOOK_ALIKES and not c.char.isdigit()]
    return [c for c in chars if (c.writer == DEV_WRITER) == dev]


# --- letters of many hands: OpenCV's Hershey stroke fonts, printed and cursive ----------------

FONTS = tuple(
    font | italic
    for font in (
        cv2.FONT_HERSHEY_SIMPLEX,
        cv2.FONT_HERSHEY_PLAIN,
        cv2.FONT_HERSHEY_DUPLEX,
        cv2.FONT_HERSHEY_COMPLEX,
        cv2.FONT_HERSHEY_TRIPLEX,
        cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
        cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
    )
    for italic in (0, cv2.FONT_ITALIC)
)
# Letters and the symbols drawn in more than one stroke or turn; single marks (- / | ~ . ...)
# and $ (an S with a bar: a 5) are left out with the look-alikes.
FONT_CHARS = "".join(c for c in string.ascii_letters if c not in LOOK_ALIKES) + "#%&*+<=>?@"


def font_letter(char: str, rng: np.random.Generator) -> np.ndarray:
    """One character in a random Hershey font, pen, slant, turn and width, with a wavering
    hand: uint8 28x28, MNIST-style."""
    font, size = FONTS[rng.integers(len(FONTS))], 96
    scale = cv2.getFontScaleFromHeight(font, size)
    pen = max(1, round(size * rng.uniform(0.02, 0.12)))
    ink = np.zeros((3 * size, 3 * size), np.uint8)
    (w, _), _ = cv2.getTextSize(char, font, scale, pen)
    cv2.putText(ink, char, (int(1.5 * size - w / 2), 2 * size), font, scale, 255, pen, cv2.LINE_AA)
    slant, stretch = rng.uniform(-0.3, 0.3), np.exp(rng.uniform(np.log(0.75), np.log(1.3)))
    shape = uji.pose(slant, rng.normal(0, 6), stretch)
    middle = np.array([1.5 * size, 1.5 * size])
    affine = np.column_stack([shape, middle - shape @ middle])
    # A smooth random displacement of a few pixels: no two copies of a glyph alike.
    grid = np.mgrid[0 : 3 * size, 0 : 3 * size].astype(np.float32)[::-1]
    field = cv2.resize(rng.normal(0, 1, (2, 4, 4)).transpose(1, 2, 0).astype(np.float32), ink.shape)
    maps = grid + field.transpose(2, 0, 1) * size * rng.uniform(0, 0.05)
    ink = cv2.warpAffine(ink, affine, ink.shape[::-1])
    ink = cv2.remap(ink, maps[0], maps[1], cv2.INTER_LINEAR)
    return mnist_normalise(ink)


# --- doodles: strokes in a unit box, x to the right, y down ---------------------------------


def _wobble(points: np.ndarray, rng: np.random.Generator, amount: float = 0.015) -> np.ndarray:
    """A hand's unsteadiness: a smooth random shift along the stroke."""
    t = np.linspace(0, 1, len(points))[:, None]
    waves = sum(
        np.sin(2 * np.pi * (rng.uniform(0.5, 2) * t + rng.uniform(0, 1))) * rng.normal(0, amount, 2)
        for _ in range(2)
    )
    return points + waves


def _line(*corners, n: int = 12) -> np.ndarray:
    """A polyline through the corners, n points per side."""
    corners = np.asarray(corners, float)
    parts = [
        np.linspace(a, b, n, endpoint=False) for a, b in zip(corners[:-1], corners[1:], strict=True)
    ]
    return np.concatenate([*parts, corners[-1:]])


def _ellipse(centre, radii, start: float = 0.0, turn: float = 1.0, n: int = 48) -> np.ndarray:
    angles = 2 * np.pi * (start + turn * np.linspace(0, 1, n))
    return np.column_stack([np.cos(angles), np.sin(angles)]) * radii + centre


def scribble(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A tangle: a smooth random walk that keeps turning back over itself."""
    n = int(rng.integers(60, 140))
    heading = np.cumsum(rng.normal(0, 0.6, n)) + rng.uniform(0, 2 * np.pi)
    steps = np.column_stack([np.cos(heading), np.sin(heading)]) * rng.uniform(0.04, 0.08)
    points = np.cumsum(steps, axis=0)
    points -= points.mean(axis=0)
    points *= 0.5 / max(np.abs(points).max(), 1e-9)
    return (points + 0.5,)


def zigzag(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Five to nine strokes up and down in one line (fewer would be a Z, an N or a W)."""
    k = int(rng.integers(5, 10))
    xs = np.linspace(0, 1, k + 1)
    peak = rng.uniform(0.25, 0.6)
    ys = np.where(np.arange(k + 1) % 2 == 0, 0.0, peak) + rng.normal(0, 0.03, k + 1)
    return (_wobble(_line(*np.column_stack([xs, ys]), n=6), rng),)


def wave(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Two to four waves side by side."""
    x = np.linspace(0, 1, 80)
    y = np.sin(2 * np.pi * rng.uniform(2, 4) * x + rng.uniform(0, 2 * np.pi))
    return (_wobble(np.column_stack([x, y * rng.uniform(0.1, 0.25)]), rng),)


def spiral(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Two to four turns winding out from the middle (one turn would be a 6 or a 9)."""
    turns = rng.uniform(2.2, 4)
    t = np.linspace(0, 1, int(60 * turns))
    angle = 2 * np.pi * turns * t * rng.choice([-1, 1])
    r = 0.05 + 0.45 * t
    return (_wobble(np.column_stack([r * np.cos(angle), r * np.sin(angle)]) + 0.5, rng),)


def star(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A five-pointed star in one stroke."""
    start = rng.uniform(0, 2 * np.pi)
    angles = start + np.arange(6) * 4 * np.pi / 5
    corners = np.column_stack([np.cos(angles), np.sin(angles)]) * 0.5 + 0.5
    return (_wobble(_line(*corners), rng),)


def house(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A box with a roof, and sometimes a door."""
    top, roof = rng.uniform(0.35, 0.5), rng.uniform(-0.05, 0.1)
    walls = _line((0.1, top), (0.1, 1), (0.9, 1), (0.9, top), (0.1, top))
    strokes = [walls, _line((0.1 + roof, top), (0.5, 0), (0.9 - roof, top))]
    if rng.random() < 0.6:
        x = rng.uniform(0.3, 0.6)
        strokes.append(_line((x, 1), (x, 0.7), (x + 0.15, 0.7), (x + 0.15, 1)))
    return tuple(_wobble(s, rng) for s in strokes)


def smiley(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A face: a round head, two eyes, a smile (or a frown)."""
    head = _ellipse((0.5, 0.5), (0.5, 0.5 * rng.uniform(0.85, 1.15)), rng.uniform(0, 1), 1.05)
    eyes = [_ellipse((x, 0.35), 0.04, n=8) for x in (0.33, 0.67)]
    smile = rng.choice([1, -1])
    mouth = _ellipse((0.5, 0.55 - 0.2 * (smile < 0)), (0.22, 0.15 * smile), 0.05, 0.4, n=16)
    return tuple(_wobble(s, rng) for s in (head, *eyes, mouth))


def hash_sign(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """#: two strokes across, two down."""
    a, b = sorted(rng.uniform(0.2, 0.8, 2) + [0, 0.15])
    strokes = [_line((0, a), (1, a)), _line((0, b), (1, b)), _line((a, 0), (a, 1))]
    strokes.append(_line((b, 0), (b, 1)))
    return tuple(_wobble(s, rng) for s in strokes)


def triangle(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A closed triangle."""
    apex = rng.uniform(0.2, 0.8)
    return (_wobble(_line((apex, 0), (1, 1), (0, 1), (apex, 0)), rng),)


def crossed_box(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A box with one or both diagonals: a ticked-off square, an envelope."""
    box = _line((0, 0), (1, 0), (1, 1), (0, 1), (0, 0))
    strokes = [box, _line((0, 0), (1, 1))]
    if rng.random() < 0.6:
        strokes.append(_line((1, 0), (0, 1)))
    return tuple(_wobble(s, rng) for s in strokes)


def two_digits(rng: np.random.Generator, digits: list[uji.UjiDigit]) -> tuple[np.ndarray, ...]:
    """Two real digits written into one another (the app cuts digits apart only at a gap)."""
    a, b = (digits[i] for i in rng.integers(len(digits), size=2))
    shapes = []
    for d in (a, b):
        points = np.concatenate(d.strokes)
        low, extent = points.min(axis=0), max(np.ptp(points, axis=0).max(), 1e-9)
        shapes.append([(s - low) / extent for s in d.strokes])
    width = max(np.concatenate(shapes[0])[:, 0].max(), 0.2)
    shift = np.array([width * rng.uniform(0.55, 0.95), rng.normal(0, 0.05)])
    return (*shapes[0], *(s + shift for s in shapes[1]))


TURNED = (3, 4, 7)  # turned or mirrored, these are no digit (a 6 turned is a 9, a 0 stays a 0)


def turned_digit(rng: np.random.Generator, digits: list[uji.UjiDigit]) -> tuple[np.ndarray, ...]:
    """A real 3, 4 or 7 mirrored, or turned upside down: an ε, an h, an L."""
    chosen = [d for d in digits if d.digit in TURNED]
    strokes = chosen[rng.integers(len(chosen))].strokes
    flip = np.array([-1.0, 1.0]) if rng.random() < 0.5 else np.array([-1.0, -1.0])
    return tuple(s * flip for s in strokes)


def flower(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Four to seven petals round a middle, in one stroke."""
    petals = int(rng.integers(4, 8))
    angle = np.linspace(0, 2 * np.pi, 24 * petals) + rng.uniform(0, 2 * np.pi)
    r = 0.2 + 0.3 * np.abs(np.cos(petals / 2 * angle)) ** rng.uniform(0.5, 1.5)
    return (_wobble(np.column_stack([r * np.cos(angle), r * np.sin(angle)]), rng),)


def cross(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A plus or a saltire, sometimes in a ring."""
    turn = uji.rotation(rng.choice([0.0, 45.0]) + rng.normal(0, 8))
    strokes = [_line((-0.5, 0), (0.5, 0)) @ turn.T, _line((0, -0.5), (0, 0.5)) @ turn.T]
    if rng.random() < 0.4:
        strokes.append(_ellipse((0, 0), 0.45, rng.uniform(0, 1), 1.05))
    return tuple(_wobble(s, rng) for s in strokes)


def loops(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A row of three to six joined loops, as a pen tries itself out (eeee, llll)."""
    theta = np.linspace(0, 2 * np.pi * rng.integers(3, 7), 200)
    x = 0.05 * theta - rng.uniform(0.08, 0.15) * np.sin(theta)
    y = -rng.uniform(0.15, 0.35) * np.cos(theta)
    return (_wobble(np.column_stack([x, y]), rng),)


def fish(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A body and a tail: two arcs crossing at the tail, an eye."""
    top = _ellipse((0.45, 0.5), (0.4, 0.25), 0.05, 0.45, n=24)
    bottom = top * np.array([1.0, -1.0]) + np.array([0.0, 1.0])
    strokes = [_line((0.95, 0.3), (0.8, 0.5), (0.95, 0.7), (0.95, 0.3), n=6), top, bottom]
    strokes.append(_ellipse((0.25, 0.45), 0.03, n=8))
    flip = np.array([-1.0, 1.0]) if rng.random() < 0.5 else np.ones(2)
    return tuple(_wobble(s * flip, rng) for s in strokes)


def hatching(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Four to seven parallel strokes: shading, or a tally."""
    k = int(rng.integers(4, 8))
    slope = rng.uniform(-0.6, 0.6)
    return tuple(_wobble(_line((x, 0), (x + slope, 1), n=6), rng) for x in np.linspace(0, 1.5, k))


def dented(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A closed outline pushed in deeply in one or two places near each other: a bean, a heart
    without its point. A ring is a 0; a ring with a dent is not (two dents facing each other
    would make an 8)."""
    angle = np.linspace(0, 2 * np.pi, 96)
    r = np.ones_like(angle)
    first = rng.uniform(0, 2 * np.pi)
    for middle in (first, first + rng.uniform(-2, 2))[: rng.integers(1, 3)]:
        gap = np.angle(np.exp(1j * (angle - middle)))
        r -= rng.uniform(0.45, 0.65) * np.exp(-((gap / rng.uniform(0.25, 0.5)) ** 2))
    outline = np.column_stack([r * np.cos(angle), r * np.sin(angle) * rng.uniform(0.7, 1.2)])
    return (_wobble(outline / 2, rng),)


def polygon(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A closed outline of four to six straight sides with sharp corners: a diamond, a
    pentagon, a kite."""
    k = int(rng.integers(4, 7))
    angles = np.sort(np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.normal(0, 0.25, k))
    corners = np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(0.7, 1, (k, 1))
    return (_wobble(_line(*corners, corners[0]) / 2, rng),)


def heart(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    t = np.linspace(0, 2 * np.pi, 60) + rng.uniform(0, 2 * np.pi)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return (_wobble(np.column_stack([x, y]) / 34, rng),)


def arrow(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A shaft and a head, pointing anywhere."""
    angle = rng.uniform(0, 2 * np.pi)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shaft = _line((0, 0), (1, 0))
    head = _line((0.75, -0.2), (1, 0), (0.75, 0.2))
    return tuple(_wobble(s @ turn.T, rng) for s in (shaft, head))


def sun(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A small disc with rays all round."""
    rays = int(rng.integers(6, 11))
    strokes = [_ellipse((0, 0), 0.25, rng.uniform(0, 1), 1.05, n=32)]
    for angle in np.linspace(0, 2 * np.pi, rays, endpoint=False) + rng.uniform(0, 1):
        direction = np.array([np.cos(angle), np.sin(angle)])
        strokes.append(_line(direction * 0.35, direction * 0.5, n=4))
    return tuple(_wobble(s, rng) for s in strokes)


def tick(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A check mark."""
    low = (rng.uniform(0.3, 0.45), 1)
    return (_wobble(_line((0, 0.55), low, (1, rng.uniform(-0.1, 0.1))), rng),)


KINDS = {
    "scribble": scribble,
    "zigzag": zigzag,
    "wave": wave,
    "spiral": spiral,
    "star": star,
    "house": house,
    "smiley": smiley,
    "hash": hash_sign,
    "triangle": triangle,
    "crossed_box": crossed_box,
    "two_digits": two_digits,
    "turned_digit": turned_digit,
    "heart": heart,
    "arrow": arrow,
    "sun": sun,
    "tick": tick,
    "flower": flower,
    "cross": cross,
    "loops": loops,
    "fish": fish,
    "hatching": hatching,
    "dented": dented,
    "polygon": polygon,
}
DEV_KINDS = ("heart", "arrow", "sun", "tick")  # never trained on: the dev set's doodles


def doodle(kind: str, rng: np.random.Generator, digits: list[uji.UjiDigit]) -> tuple:
    """One doodle of `kind` as strokes; `digits` are the real digits two_digits writes."""
    return KINDS[kind](rng, digits) if kind in ("two_digits", "turned_digit") else KINDS[kind](rng)


def training_forms(
    n: int, seed: int, digits: list[uji.UjiDigit], bend_amount: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST-style 28x28 drawings of what is not a digit, labelled NOT_A_DIGIT: a quarter the
    training writers' letters and symbols, each drawn as train/uji.py draws a digit (a random
    pen, size, slant, position) and bent; a quarter letters and symbols in the Hershey fonts;
    half doodles of the training kinds, drawn as the letters are."""
    kinds = [k for k in KINDS if k not in DEV_KINDS]
    rng = np.random.default_rng((seed, 7))
    letter_strokes = [c.strokes for c in letters()]
    n_letters, n_fonts = n // 4, n // 4
    shapes = [letter_strokes[i % len(letter_strokes)] for i in range(n_letters)]
    shapes += [doodle(kinds[i % len(kinds)], rng, digits) for i in range(n - n_letters - n_fonts)]
    fonts = [font_letter(FONT_CHARS[i % len(FONT_CHARS)], rng) for i in range(n_fonts)]
    images = uji.drawings(shapes, len(shapes), seed, bend_amount)
    if fonts:
        images = np.concatenate([images, np.stack(fonts)])
    return images, np.full(n, NOT_A_DIGIT, np.int64)
