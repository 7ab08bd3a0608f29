"""What the training side adds for canvas drawings: continental and low-resolution forms,
stroke-width augmentation, and the `canvas` arch (the default)."""

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
    every = with_forms(dataset, 4, 0, 0, uji=3, optdigits=5)
    assert list(every.y_train[5:9]) == [1, 7, 1, 7] and every.x_train.shape == (17, 28, 28)
    assert "3 uji" in every.name and "5 optdigits" in every.name
    # The 8x8-grid digits come from MNIST's (labels 0..4 here), not from the drawn forms.
    assert set(with_forms(dataset, 40, 60, 0).y_train[45:]) <= set(y)


def test_a_uji_fold_kept_out_draws_only_the_other_writers():
    from train import uji
    from train.data import Dataset, with_forms

    x, y = np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64)
    dataset = Dataset("tiny", x, y, x, y)
    kept_out = with_forms(dataset, 0, 0, seed=3, uji=700, uji_fold=2).x_train[1:]
    others = uji.split_writers(uji.read(), 2)[0]
    assert len(others) == 640
    # The 640 other writers' digits in turn, then the first 60 again: none of fold 2's.
    np.testing.assert_array_equal(kept_out, uji.training_forms(others, 700, 3)[0])
    every = with_forms(dataset, 0, 0, seed=3, uji=700).x_train[1:]
    assert not np.array_equal(every, kept_out)


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


def test_max_3x3_is_tensorflows_max_pool():
    from train.augment import max_3x3

    images = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype(np.float32)
    expected = tf.nn.max_pool2d(images, 3, 1, "SAME")
    np.testing.assert_array_equal(max_3x3(images), expected)
    np.testing.assert_array_equal(-max_3x3(-images), -tf.nn.max_pool2d(-images, 3, 1, "SAME"))


def moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: length along the main axis (its standard deviation), centre of mass (x, y),
    and the main axis's angle in degrees, from second moments."""
    rows, cols = np.mgrid[: images.shape[1], : images.shape[2]]
    ink = images[..., 0].sum(axis=(1, 2))
    cx = (images[..., 0] * cols).sum(axis=(1, 2)) / ink
    cy = (images[..., 0] * rows).sum(axis=(1, 2)) / ink
    dx, dy = cols[None] - cx[:, None, None], rows[None] - cy[:, None, None]
    mxx, myy = (images[..., 0] * dx**2).sum(axis=(1, 2)), (images[..., 0] * dy**2).sum(axis=(1, 2))
    mxy = (images[..., 0] * dx * dy).sum(axis=(1, 2))
    angle = np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))
    main = (mxx + myy) / 2 + np.sqrt(((mxx - myy) / 2) ** 2 + mxy**2)
    return np.sqrt(main / ink), np.stack([cx, cy], axis=1), angle


def test_random_affine_rotates_shifts_zooms_and_stretches_within_its_ranges():
    from train.augment import RandomAffine

    bar = np.zeros((64, 28, 28, 1), np.float32)
    bar[:, 13:15, 6:22] = 1.0  # a horizontal bar centred on the image centre (13.5, 13.5)
    length0, centre0, angle0 = moments(bar)
    assert np.allclose(angle0, 0) and np.allclose(centre0, 13.5)

    def apply(images=bar, **ranges):
        layer = RandomAffine(**{"rotation": 0.0, "translation": 0.0, "zoom": 0.0, **ranges}, seed=1)
        np.testing.assert_array_equal(layer(images, training=False), images)
        return moments(np.asarray(layer(images, training=True)))

    length, centre, angle = apply()
    np.testing.assert_allclose(centre, 13.5, atol=1e-3)  # nothing asked, nothing moves
    np.testing.assert_allclose(length, length0, rtol=1e-3)
    length, centre, angle = apply(rotation=15 / 360)  # about the centre, up to 15 degrees
    assert np.abs(angle).max() <= 15.5 and angle.min() < -10 and angle.max() > 10
    np.testing.assert_allclose(centre, 13.5, atol=0.1)
    length, centre, angle = apply(translation=0.1)  # up to 2.8 pixels, each axis on its own
    shift = centre - 13.5
    assert np.abs(shift).max() <= 2.8 + 0.05 and np.abs(shift).min(axis=0).max() < 0.5
    assert (shift > 2).any(axis=0).all() and (shift < -2).any(axis=0).all()
    np.testing.assert_allclose(angle, 0, atol=0.5)
    length, centre, angle = apply(zoom=0.1)  # scaled about the centre: 1/1.1 to 1/0.9 as long
    ratio = length / length0
    assert 0.89 < ratio.min() < 0.95 and 1.05 < ratio.max() < 1.12
    np.testing.assert_allclose(centre, 13.5, atol=0.1)
    length, centre, angle = apply(stretch=0.3)  # widths only: 1/1.3 to 1/0.7 as wide
    ratio = length / length0
    assert 0.75 < ratio.min() < 0.85 and 1.3 < ratio.max() < 1.45
    np.testing.assert_allclose(centre, 13.5, atol=0.1)
    np.testing.assert_allclose(angle, 0, atol=0.5)
    standing = np.ascontiguousarray(bar.transpose(0, 2, 1, 3))  # the same bar, upright
    height, _, _ = apply(standing, stretch=0.3)
    np.testing.assert_allclose(height, length0, rtol=1e-3)  # heights stay


def test_canvas_arch_is_the_reference_network_without_dropout_and_a_narrower_first_block():
    from train.augment import canvas_augmentation
    from train.model import build_canvas, build_reference

    canvas, reference = build_canvas(seed=0), build_reference(seed=0)

    def filters(model):
        return [layer.filters for layer in model.layers if hasattr(layer, "filters")]

    assert filters(reference) == [32, 32, 64, 64, 128]
    assert filters(canvas) == [16, 16, 64, 64, 128]  # narrower only at full resolution
    assert (canvas.count_params(), reference.count_params()) == (421_146, 437_546)

    def kinds(model):
        return [type(layer).__name__ for layer in model.layers[2:]]  # after input, augmentation

    # The canvas arch trains its batch norm with the fused kernel; the reference keeps Keras'
    # own layer, so that its runs stay what they were.
    fused = [k.replace("BatchNormalization", "FusedBatchNormalization") for k in kinds(reference)]
    assert kinds(canvas) == [k for k in fused if k != "Dropout"]
    assert "FusedBatchNormalization" not in kinds(reference)
    # Each random layer has its own seed (one shared seed moves them in lockstep), and all of
    # them are the identity at inference.
    augmentation = canvas_augmentation(seed=3)
    seeds = [layer.seed for layer in augmentation.layers]
    assert None not in seeds and len(set(seeds)) == len(seeds)
    image = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(augmentation(image, training=False), image)


def test_random_affine_loads_the_config_of_versions_that_named_an_elastic_distortion():
    from train.augment import RandomAffine

    config = {**RandomAffine(0.1, 0.1, 0.1, stretch=0.3, seed=5).get_config(), "elastic": 0.0}
    assert RandomAffine.from_config(config).get_config() == {
        k: v for k, v in config.items() if k != "elastic"
    }
