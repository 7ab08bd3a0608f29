"""UJI Pen Characters v2 digits: real pen strokes, read from data/uji/, drawn as a canvas would.

Writers from Spain wrote each digit twice on a tablet (data/uji/README.md: source, licence,
format). `read()` returns them as typed records; `render()` draws one as the browser canvas sends
a drawing: each stroke its own polyline with a round pen, on a 280x280 RGBA image with white ink
and the coverage in alpha. `training_forms()` draws the training writers' digits many times, with
random pens, sizes, slants and positions, as 28x28 MNIST-style training images.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from settings import CANVAS_SIZE as CANVAS
from train.canvas_forms import mnist_normalise

UJI_FILE = Path(__file__).resolve().parent.parent / "data" / "uji" / "ujidigits.txt"
# Every other character (letters, accents, punctuation, symbols) of three of the training writers,
# in UTF-8: train/nondigits.py reads them as examples of what is not a digit.
NONDIGITS_FILE = UJI_FILE.with_name("ujinondigits.txt")

# The database's 40 training writers (its test writers are never used), listed rather than
# read from the file so that the folds stay the same whatever the file holds.
WRITERS = tuple(
    "trn_" + w
    for w in "UJI_W01 UJI_W02 UJI_W03 UJI_W04 UJI_W05 UJI_W06 UJI_W07 UJI_W08 UJI_W09 UJI_W10 "
    "UJI_W11 UPV_W17 UPV_W19 UPV_W20 UPV_W22 UPV_W23 UPV_W25 UPV_W26 UPV_W28 UPV_W29 UPV_W31 "
    "UPV_W32 UPV_W34 UPV_W35 UPV_W37 UPV_W38 UPV_W40 UPV_W41 UPV_W43 UPV_W44 UPV_W46 UPV_W47 "
    "UPV_W49 UPV_W50 UPV_W52 UPV_W53 UPV_W55 UPV_W56 UPV_W58 UPV_W59".split()
)
# Five writer-disjoint folds of eight, dealt in turn from the sorted list so that each holds two
# or three of the eleven writers of the UJI site. `python -m train --uji-fold K` keeps fold K out
# of training; bench/accuracy_bench.py and tests/devsets.py's `uji_digits` score each fold's
# model on the fold it never saw.
FOLDS = tuple(frozenset(WRITERS[k::5]) for k in range(5))

_WORD = re.compile(r"WORD (\d) (\S+)-(\d+)$")  # a digit
_CHAR_WORD = re.compile(r"WORD (\S) (\S+)-(\d+)$")  # any character
_NUMSTROKES = re.compile(r"NUMSTROKES (\d+)$")
_POINTS = re.compile(r"POINTS (\d+) #((?: -?\d+)*)$")


class UjiError(Exception):
    """The UJI file cannot be read; the message says which line and why."""


@dataclass(frozen=True)
class UjiDigit:
    digit: int
    writer: str  # e.g. "trn_UPV_W23"
    sample: int  # 1 or 2: each writer wrote each digit twice
    # One (n, 2) float array of x, y per stroke (pen down to pen up), in hundredths of a
    # millimetre, y growing downwards.
    strokes: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class UjiChar:
    """Any character of the database: a letter, a mark, a symbol (or a digit)."""

    char: str
    writer: str
    sample: int
    strokes: tuple[np.ndarray, ...]


def read(path: Path = UJI_FILE) -> list[UjiDigit]:
    """Every digit in a UJI file (Latin-1 text, the original database's format), in file order."""
    chars = read_chars(path, "latin-1", _WORD)
    return [UjiDigit(int(c.char), c.writer, c.sample, c.strokes) for c in chars]


def read_chars(
    path: Path = NONDIGITS_FILE, encoding: str = "utf-8", word: re.Pattern = _CHAR_WORD
) -> list[UjiChar]:
    """Every character in a UJI file, in file order; `word` says which characters may be there."""
    try:
        lines = path.read_text(encoding=encoding).splitlines()
    except OSError as e:
        raise UjiError(f"{path}: cannot read ({e.strerror or e})") from e
    chars: list[UjiChar] = []
    rows = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    i = 0
    while i < len(rows):
        number, line = rows[i]
        header = word.match(line)
        if not header:
            raise UjiError(f"{path}:{number}: expected 'WORD <character> <writer>-<sample>'")
        if i + 1 >= len(rows) or not (count := _NUMSTROKES.match(rows[i + 1][1])):
            raise UjiError(f"{path}:{number + 1}: expected 'NUMSTROKES <n>' after {line!r}")
        n_strokes = int(count.group(1))
        strokes = []
        for number, line in rows[i + 2 : i + 2 + n_strokes]:
            points = _POINTS.match(line)
            if not points:
                raise UjiError(f"{path}:{number}: expected 'POINTS <n> # x y x y ...'")
            values = np.array(points.group(2).split(), np.float64)
            if len(values) != 2 * int(points.group(1)) or not len(values):
                raise UjiError(
                    f"{path}:{number}: POINTS says {points.group(1)} points but "
                    f"{len(values)} numbers follow"
                )
            strokes.append(values.reshape(-1, 2))
        if len(strokes) != n_strokes or not n_strokes:
            found = len(strokes)
            raise UjiError(f"{path}:{rows[i + 1][0]}: {n_strokes} strokes announced, {found} found")
        char, writer, sample = header.group(1), header.group(2), int(header.group(3))
        chars.append(UjiChar(char, writer, sample, tuple(strokes)))
        i += 2 + n_strokes
    return chars


def split_writers(
    digits: list[UjiDigit], fold: int | None = None
) -> tuple[list[UjiDigit], list[UjiDigit]]:
    """(training digits, held-out digits): fold `fold`'s writers held out, or none."""
    held_out = FOLDS[fold] if fold is not None else frozenset()
    train = [d for d in digits if d.writer not in held_out]
    return train, [d for d in digits if d.writer in held_out]


def rotation(degrees: float) -> np.ndarray:
    """The 2x2 matrix that turns points by `degrees` (counter-clockwise with y up)."""
    theta = np.deg2rad(degrees)
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def pose(slant: float, angle: float, stretch: float) -> np.ndarray:
    """The 2x2 matrix that shears by `slant` (positive leans the top to the right), then turns by
    `angle` degrees, then scales the width by `stretch`."""
    return np.diag([stretch, 1.0]) @ rotation(angle) @ np.array([[1.0, -slant], [0.0, 1.0]])


def draw(
    strokes: tuple[np.ndarray, ...],
    size: float,
    pen: float,
    slant: float = 0.0,
    angle: float = 0.0,
    stretch: float = 1.0,
    centre: tuple[float, float] = (CANVAS / 2, CANVAS / 2),
    canvas: int = CANVAS,
    supersample: int = 4,
) -> np.ndarray:
    """Ink coverage (canvas x canvas uint8) of the strokes drawn with a round pen.

    The digit's longer side becomes `size` pixels, its box centred on `centre`; `pen` is the
    pen's width in pixels; `slant`, `angle` and `stretch` pose it (`pose`). Each stroke is its own
    polyline with round caps and joins, as the canvas draws a mouse stroke; a one-point stroke is
    a dot.
    """
    points = np.concatenate(strokes)
    middle = (points.min(axis=0) + points.max(axis=0)) / 2
    shape = pose(slant, angle, stretch)
    moved = [(s - middle) @ shape.T for s in strokes]
    everything = np.concatenate(moved)
    extent = np.ptp(everything, axis=0).max()
    scale = size / max(extent, 1e-9)
    k = supersample
    big = np.zeros((canvas * k, canvas * k), np.uint8)
    offset = np.array(centre) - (everything.min(axis=0) + everything.max(axis=0)) / 2 * scale
    thickness = max(1, round(pen * k))
    for stroke in moved:
        fixed = np.round(((stroke * scale + offset) * k) * 16).astype(np.int32)  # 4 fraction bits
        if len(np.unique(fixed, axis=0)) == 1:
            cv2.circle(big, tuple(fixed[0]), thickness * 8, 255, -1, cv2.LINE_AA, shift=4)
        else:
            cv2.polylines(big, [fixed], False, 255, thickness, cv2.LINE_AA, shift=4)
    return cv2.resize(big, (canvas, canvas), interpolation=cv2.INTER_AREA)


def to_rgba(ink: np.ndarray) -> np.ndarray:
    """Ink coverage as the canvas sends it: white RGB where there is ink, coverage in alpha."""
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., :3] = np.where(ink[..., None] > 0, 255, 0)
    rgba[..., 3] = ink
    return rgba


def render(digit: UjiDigit, **style) -> np.ndarray:
    """The digit as the canvas sends it: 280x280x4 uint8 RGBA (`draw`'s keywords for style)."""
    return to_rgba(draw(digit.strokes, **style))


def random_style(rng: np.random.Generator) -> dict:
    """A random way to draw a digit on the canvas: `draw`'s keywords.

    Pens from a hairline to a marker relative to the digit (the app's stroke slider reaches
    from 5 to 50 pixels), slants and turns beyond the writer's own, wider and narrower digits,
    anywhere on the canvas.
    """
    size = rng.uniform(90, 240)
    margin = size / 2 + 10
    return {
        "size": size,
        "pen": size * rng.uniform(0.05, 0.2),
        "slant": rng.uniform(-0.3, 0.3),
        "angle": rng.normal(0, 6),
        "stretch": np.exp(rng.uniform(np.log(0.75), np.log(1.3))),
        "centre": (rng.uniform(margin, CANVAS - margin), rng.uniform(margin, CANVAS - margin)),
    }


def bend(
    strokes: tuple[np.ndarray, ...], rng: np.random.Generator, amount: float
) -> tuple[np.ndarray, ...]:
    """The strokes as the same writer might have drawn them another time, `amount` 0 unchanged.

    Each stroke moves, turns and grows a little on its own (where the crossbar of a 7 falls, how
    long the flag of a 1 is, whether a 4 closes), and the whole digit bends in two smooth waves
    (a rounder or flatter top, a longer tail). At amount 1 a stroke moves by about 4% of the
    digit's size and turns by about 6 degrees, and the waves shift points by up to 6%.
    """
    if amount <= 0:
        return strokes
    points = np.concatenate(strokes)
    low = points.min(axis=0)
    extent = max(np.ptp(points, axis=0).max(), 1e-9)
    bent = []
    for stroke in strokes:
        centre = stroke.mean(axis=0)
        turn = rotation(rng.normal(0, 6 * amount))
        grow = np.exp(rng.normal(0, 0.06 * amount))
        shift = rng.normal(0, 0.04 * amount * extent, 2)
        bent.append((stroke - centre) @ turn.T * grow + centre + shift)
    for _ in range(2):
        direction = rng.normal(size=2)
        frequency = direction / np.linalg.norm(direction) * rng.uniform(0.5, 1.5)
        push = rng.normal(size=2)
        push *= 0.06 * amount * extent * rng.uniform(0, 1) / np.linalg.norm(push)
        phase = rng.uniform(0, 2 * np.pi)
        bent = [
            s + np.sin(2 * np.pi * ((s - low) / extent) @ frequency + phase)[:, None] * push
            for s in bent
        ]
    return tuple(bent)


def training_forms(
    digits: list[UjiDigit], n: int, seed: int = 0, bend_amount: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST-style 28x28 drawings of `digits` (each in turn, each time in a random style),
    each bent by `bend_amount` (`bend`), and their labels."""
    images = drawings([d.strokes for d in digits], n, seed, bend_amount)
    return images, np.array([digits[i % len(digits)].digit for i in range(n)], np.int64)


def drawings(
    shapes: list[tuple[np.ndarray, ...]], n: int, seed: int = 0, bend_amount: float = 0.0
) -> np.ndarray:
    """n MNIST-style 28x28 uint8 drawings of `shapes` (strokes each), in turn, each in a random
    style and bent by `bend_amount`.

    Drawn at a quarter of the canvas's resolution with 2x supersampling: the 28x28 result is the
    same to a grey level or two and costs a tenth as much.
    """
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        style = random_style(rng)
        small = {
            **style,
            "size": style["size"] / 4,
            "pen": style["pen"] / 4,
            "centre": (CANVAS / 8, CANVAS / 8),
        }
        strokes = bend(shapes[i % len(shapes)], rng, bend_amount)
        ink = draw(strokes, canvas=CANVAS // 4, supersample=2, **small)
        images[i] = mnist_normalise(ink)
    return images
