"""What is not a digit (train/nondigits.py) and the rule that refuses it (train/calibration.py)."""

import numpy as np
import pytest

from settings import NOT_A_DIGIT
from tests import devsets
from train import calibration, nondigits, uji


def test_the_letters_leave_out_look_alikes_and_keep_the_dev_writer_apart():
    train, dev = nondigits.letters(), nondigits.letters(dev=True)
    assert {c.writer for c in dev} == {nondigits.DEV_WRITER}
    assert nondigits.DEV_WRITER not in {c.writer for c in train} and len(train) == 2 * len(dev)
    chars = {c.char for c in train + dev}
    assert not chars & nondigits.LOOK_ALIKES and not any(c.isdigit() for c in chars)
    assert {"A", "?", "@", "€", "ñ", "x"} <= chars
    # Every other character of the file is there: only the look-alikes are left out.
    everything = {c.char for c in uji.read_chars()}
    assert chars | (everything & nondigits.LOOK_ALIKES) == everything


def test_font_letters_are_no_look_alikes_and_differ_each_time():
    assert not set(nondigits.FONT_CHARS) & nondigits.LOOK_ALIKES
    assert {"A", "k", "?", "#"} <= set(nondigits.FONT_CHARS) and not any(
        c.isdigit() for c in nondigits.FONT_CHARS
    )
    rng = np.random.default_rng(4)
    first, again = (nondigits.font_letter("k", rng) for _ in range(2))
    for image in (first, again):
        assert image.shape == (28, 28) and image.dtype == np.uint8 and image.max() == 255
        ys, xs = np.nonzero(image)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 20  # fitted to MNIST's 20x20 box
    assert not np.array_equal(first, again)
    a_and_h = nondigits.font_letter("A", rng), nondigits.font_letter("h", rng)
    assert not np.array_equal(*a_and_h)


@pytest.mark.parametrize("kind", sorted(nondigits.KINDS))
def test_every_kind_of_doodle_is_finite_strokes_that_vary(kind):
    digits = uji.read()[:20]
    first = nondigits.doodle(kind, np.random.default_rng(1), digits)
    other = nondigits.doodle(kind, np.random.default_rng(2), digits)
    assert first and all(s.ndim == 2 and s.shape[1] == 2 and np.isfinite(s).all() for s in first)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=False))


def test_training_forms_are_mnist_style_negatives_without_the_dev_kinds(monkeypatch):
    digits = uji.read()[:40]
    images, labels = nondigits.training_forms(60, 3, digits, 1.5)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert (labels == NOT_A_DIGIT).all()
    assert (images.max(axis=(1, 2)) == 255).all()  # each fitted as MNIST was
    np.testing.assert_array_equal(images, nondigits.training_forms(60, 3, digits, 1.5)[0])

    def never(*args):
        raise AssertionError("a dev kind was drawn for training")

    for kind in nondigits.DEV_KINDS:
        monkeypatch.setitem(nondigits.KINDS, kind, never)
    nondigits.training_forms(200, 4, digits)


def test_the_dev_sets_are_canvases_of_the_dev_writer_and_kinds():
    letters = list(devsets.nondigit_letters())
    assert len(letters) == len(nondigits.letters(dev=True))
    doodles = list(devsets.doodles(per_kind=3))
    assert [k for _, k in doodles] == [k for k in nondigits.DEV_KINDS for _ in range(3)]
    for canvas, _ in letters[:5] + doodles:
        assert canvas.shape == (280, 280, 4) and canvas[..., 3].max() > 0


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """11-column probabilities whose digits are `temperature` times too sharp, and labels drawn
    from the honest ones."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, 10))
    honest = softmax(logits)
    labels = np.array([rng.choice(10, p=row) for row in honest])
    sharp = softmax(logits * temperature) * 0.95
    return np.column_stack([sharp, np.full(n, 0.05)]), labels


def test_the_fitted_temperature_undoes_overconfidence_and_lowers_the_calibration_error():
    p, labels = overconfident(4000, 2.0)
    t = calibration.fit_temperature(p, labels)
    assert t == pytest.approx(2.0, rel=0.15)
    before = calibration.calibration_error(calibration.digit_probabilities(p), labels)
    after = calibration.calibration_error(calibration.digit_probabilities(p, t), labels)
    assert after < 0.03 < before


def test_the_threshold_refuses_at_most_the_allowed_share_of_digits():
    rng = np.random.default_rng(5)
    real, labels = overconfident(1000, 1.0, 1)
    real[:, NOT_A_DIGIT] = rng.uniform(0, 0.6, 1000)
    validation = overconfident(5000, 1.0, 2)[0]
    validation[:, NOT_A_DIGIT] = rng.uniform(0, 0.3, 5000)
    rule = calibration.choose(real, labels, validation)
    refused = calibration.answer(real, rule)[2] == 0
    assert 0 < refused.mean() <= calibration.REAL_REJECTED
    assert (~calibration.answer(validation, rule)[2]).mean() <= calibration.VALIDATION_REJECTED
    # What scores lower than every digit is refused.
    doodle = np.zeros((1, 11))
    doodle[0, NOT_A_DIGIT] = 0.99
    assert not calibration.answer(doodle, rule)[2][0]


def test_a_ten_class_model_accepts_everything():
    p, labels = overconfident(100, 1.0)
    rule = calibration.choose(p[:, :10], labels, p[:, :10])
    assert rule.threshold == 0 and calibration.answer(p[:, :10], rule)[2].all()
