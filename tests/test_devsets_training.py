"""What the training side adds for canvas drawings: continental and low-resolution forms,
stroke-width augmentation,
and the `canvas` arch's test-time averaging."""

import numpy as np
import pytest

from train.canvas_forms import continental


def test_continental_forms_are_mnist_style_and_deterministic():
    images, labels = continental(10, seed=3)
    again, _ = continental(10, seed=3)
    other, _ = continental(10, seed=4)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    assert images.shape == (10, 28, 28) and images.dtype == np.uint8
    assert list(labels) == [1, 7] * 5
    for image in images:
        ys, xs = np.nonzero(image > 0)
        # MNIST's normalisation: fits a 20x20 box (plus antialiasing), centre of mass near 14, 14.
        assert np.ptp(ys) <= 21 and np.ptp(xs) <= 21 and image.max() == 255
        weights = image.astype(float) / image.sum()
        cy, cx = (np.indices(image.shape) * weights).sum(axis=(1, 2))
        assert abs(cy - 13.5) < 1.5 and abs(cx - 13.5) < 1.5


def test_continental_seven_has_a_crossbar_one_a_narrow_stem():
    images, labels = continental(40, seed=0)
    for image, label in zip(images, labels, strict=True):
        rows = image > 100
        ys = np.nonzero(rows.any(axis=1))[0]
        h = ys[-1] - ys[0]
        runs = [np.ptp(np.nonzero(r)[0]) if r.any() else 0 for r in rows[ys[0] : ys[-1] + 1]]
        if label == 7:
            # The bar crosses the stem around mid height: much wider than the stem lower down.
            assert max(runs[3 * h // 10 : 7 * h // 10]) >= np.median(runs[8 * h // 10 :]) + 3
        else:
            assert np.median(runs[4 * h // 10 : 8 * h // 10]) <= 5


def test_with_forms_adds_to_training_only():
    from train.data import Dataset, with_forms

    x = np.zeros((5, 28, 28), np.uint8)
    x[:, 6:22, 12:16] = 255  # five bars, labelled 0..4
    y = np.arange(5, dtype=np.int64)
    dataset = Dataset("tiny", x, y, x[:2], y[:2])
    more = with_forms(dataset, continental=4, lowres=3, seed=0)
    assert more.x_train.shape == (12, 28, 28) and list(more.y_train[5:9]) == [1, 7, 1, 7]
    assert set(more.y_train[9:]) <= set(y)
    assert more.x_test is dataset.x_test
    assert "continental" in more.name and "lowres" in more.name
    assert with_forms(dataset, 0, 0, seed=0) is dataset


def test_lowres_forms_are_fat_blocky_mnist_style_and_deterministic():
    from train.lowres_forms import lowres

    x = np.zeros((6, 28, 28), np.uint8)  # six copies of a thin (2 px) 7
    x[:, 4:6, 6:22] = 255
    for r in range(6, 24):
        x[:, r, 20 - (r - 6) // 2 : 22 - (r - 6) // 2] = 255
    y = np.full(6, 7)
    images, labels = lowres(x, y, 40, seed=1)
    again, _ = lowres(x, y, 40, seed=1)
    np.testing.assert_array_equal(images, again)
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert list(labels) == [7] * 40
    for image in images:
        ys, xs = np.nonzero(image > 0)
        assert np.ptp(ys) <= 21 and np.ptp(xs) <= 21 and image.max() == 255
    # Seen through an 8x8 grid and fitted to 20 px, a 2 px stroke comes back fatter, by amounts
    # that vary with the random cut level.
    ink = (images > 127).sum(axis=(1, 2)) / (x[0] > 127).sum()
    assert ink.min() > 1.1 and np.median(ink) > 1.3 and np.ptp(ink) > 0.4


tf = pytest.importorskip("tensorflow")


def test_stroke_width_changes_strokes_only_while_training():
    from train.augment import StrokeWidth

    image = np.zeros((64, 28, 28, 1), np.float32)
    image[:, 6:22, 13:15] = 1.0  # a 2-pixel vertical stroke, the same in all 64 images
    layer = StrokeWidth(seed=1)
    np.testing.assert_array_equal(layer(image, training=False), image)
    ink = layer(image, training=True).numpy().sum(axis=(1, 2, 3))
    original = image[0].sum()
    # Some images got fatter, some thinner, by differing amounts, never beyond a 3x3 dilation.
    assert ink.max() > 1.3 * original and ink.min() < 0.8 * original
    assert len(np.unique(np.round(ink, 2))) > 20
    assert ink.max() <= 18 * 4 + 1e-3


def test_canvas_arch_averages_shifted_predictions_at_inference():
    from train.canvas_model import SHIFTS
    from train.model import build_canvas

    model = build_canvas(seed=0)
    rng = np.random.default_rng(0)
    images = np.zeros((3, 28, 28, 1), np.float32)
    images[:, 4:24, 4:24] = rng.random((3, 20, 20, 1))
    probabilities = model(images, training=False).numpy()
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    core = model.get_layer("probabilities").core
    shifted = [images] + [np.roll(images, s, axis=(1, 2)) for s in SHIFTS]
    expected = np.mean([core(v, training=False).numpy() for v in shifted], axis=0)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    # Not the same as the unshifted image alone: the averaging is real.
    assert not np.allclose(probabilities, core(images, training=False).numpy(), atol=1e-6)
