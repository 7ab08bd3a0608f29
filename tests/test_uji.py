"""The UJI pen-stroke digits: the reader, the writer folds, the canvas renderer, training forms."""

import cv2
import numpy as np
import pytest

from train import uji

# Two entries as data/uji/ujidigits.txt holds them, shortened.
TWO_ENTRIES = """WORD 0 trn_UJI_W01-01
  NUMSTROKES 1
  POINTS 4 # 527 688 485 685 432 746 398 798
WORD 4 trn_UPV_W19-02
  NUMSTROKES 2
  POINTS 3 # 375 489 365 478 354 483
  POINTS 1 # 955 462
"""


@pytest.fixture(scope="module")
def digits() -> list[uji.UjiDigit]:
    return uji.read()


def test_reader_gives_typed_records(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text(TWO_ENTRIES, encoding="latin-1")
    zero, four = uji.read(path)
    assert (zero.digit, zero.writer, zero.sample) == (0, "trn_UJI_W01", 1)
    assert (four.digit, four.writer, four.sample) == (4, "trn_UPV_W19", 2)
    assert len(zero.strokes) == 1 and len(four.strokes) == 2
    np.testing.assert_array_equal(zero.strokes[0][:2], [[527, 688], [485, 685]])
    assert four.strokes[0].shape == (3, 2) and four.strokes[1].shape == (1, 2)


@pytest.mark.parametrize(
    "text, message",
    [
        ("WORD x trn_W01-01\n", r"two.txt:1: expected 'WORD"),
        ("WORD 1 trn_W01-01\n  POINTS 1 # 1 2\n", r"two.txt:2: expected 'NUMSTROKES"),
        ("WORD 1 trn_W01-01\n  NUMSTROKES 1\n  POINTS 2 # 1 2\n", r":3: POINTS says 2 points but"),
        ("WORD 1 trn_W01-01\n  NUMSTROKES 2\n  POINTS 1 # 1 2\n", r":2: 2 strokes announced, 1"),
        ("WORD 1 trn_W01-01\n  NUMSTROKES 1\n  POINTS 1 # 1 b\n", r":3: expected 'POINTS"),
    ],
)
def test_a_malformed_file_names_its_line(tmp_path, text, message):
    path = tmp_path / "two.txt"
    path.write_text(text)
    with pytest.raises(uji.UjiError, match=message):
        uji.read(path)
    with pytest.raises(uji.UjiError, match="cannot read"):
        uji.read(tmp_path / "missing.txt")


def test_the_shipped_file_holds_40_writers_two_of_each_digit(digits):
    assert len(digits) == 800
    writers = {d.writer for d in digits}
    assert len(writers) == 40
    for writer in writers:
        mine = sorted((d.digit, d.sample) for d in digits if d.writer == writer)
        assert mine == [(digit, sample) for digit in range(10) for sample in (1, 2)]


def test_the_folds_split_the_40_writers_into_five_disjoint_eights(digits):
    assert sorted({d.writer for d in digits}) == list(uji.WRITERS) and len(uji.WRITERS) == 40
    assert [len(f) for f in uji.FOLDS] == [8] * 5 and frozenset().union(*uji.FOLDS) == set(
        uji.WRITERS
    )
    # Both sites in every fold: the eleven UJI-site writers two or three to a fold.
    assert all(2 <= sum(w.startswith("trn_UJI") for w in f) <= 3 for f in uji.FOLDS)
    for k, fold in enumerate(uji.FOLDS):
        train, held_out = uji.split_writers(digits, k)
        assert {d.writer for d in held_out} == fold and len(held_out) == 160
        assert not {d.writer for d in train} & fold and len(train) == 640
    train, held_out = uji.split_writers(digits)
    assert len(train) == 800 and held_out == []


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(ink >= 128)
    return ys.min(), ys.max(), xs.min(), xs.max()


def test_render_draws_the_canvas_image_at_the_size_and_place_asked(digits):
    seven = next(d for d in digits if d.digit == 7)
    canvas = uji.render(seven, size=160, pen=20, centre=(100, 150))
    assert canvas.shape == (280, 280, 4) and canvas.dtype == np.uint8
    ink = canvas[..., 3]
    assert (canvas[..., :3][ink > 0] == 255).all() and (canvas[..., :3][ink == 0] == 0).all()
    top, bottom, left, right = ink_box(ink)
    # The longer side is 160 px between stroke centres; the pen adds half its width each side.
    assert max(bottom - top, right - left) == pytest.approx(160 + 20, abs=3)
    assert (top + bottom) / 2 == pytest.approx(150, abs=2)
    assert (left + right) / 2 == pytest.approx(100, abs=2)
    # Antialiased edges: coverage between none and full along the strokes.
    assert ((ink > 0) & (ink < 255)).sum() > 0.1 * (ink == 255).sum()


def test_render_draws_each_stroke_with_a_round_pen_of_the_width_asked():
    # Two parallel strokes, far apart: two separate bars, not a filled shape joining them.
    strokes = (np.array([[0.0, 0.0], [0.0, 100.0]]), np.array([[60.0, 100.0], [60.0, 0.0]]))
    ink = uji.draw(strokes, size=100, pen=12)
    binary = (ink >= 128).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary)
    assert count == 3  # background and two strokes: the pen lifted between them
    widths = sorted(stats[1:, cv2.CC_STAT_WIDTH])
    assert widths == [pytest.approx(12, abs=2)] * 2
    # Round caps: each bar reaches half a pen beyond its end points, rounded.
    assert stats[1, cv2.CC_STAT_HEIGHT] == pytest.approx(100 + 12, abs=2)
    top, left = stats[1, cv2.CC_STAT_TOP], stats[1, cv2.CC_STAT_LEFT]
    assert binary[top + 1, left : left + 20].sum() < 0.75 * 12  # narrower than the bar
    # A single point is a dot of the pen's width.
    bar = (np.array([[0.0, 0.0], [0.0, 100.0]]),)
    dot = uji.draw((np.array([[50.0, 50.0]]), *bar), 100, 12).astype(float)
    area = (dot.sum() - uji.draw(bar, 100, 12).astype(float).sum()) / 255
    assert area == pytest.approx(np.pi * 6**2, rel=0.1)


def test_render_slants_turns_and_stretches(digits):
    one = next(d for d in digits if d.digit == 1 and len(d.strokes) == 1)
    bar = (np.array([[0.0, 0.0], [0.0, 100.0]]),)
    upright = ink_box(uji.draw(bar, size=150, pen=10))
    assert upright[3] - upright[2] == pytest.approx(10, abs=2)
    leaning = (uji.draw(bar, size=150, pen=10, slant=0.5) >= 128).astype(np.uint8)
    ys, xs = np.nonzero(leaning)
    # Positive slant leans the top to the right: x falls as y grows.
    assert np.polyfit(ys, xs, 1)[0] == pytest.approx(-0.5, abs=0.05)
    turned = ink_box(uji.draw(bar, size=150, pen=10, angle=90))
    assert turned[1] - turned[0] == pytest.approx(10, abs=2)
    wide = ink_box(uji.render(one, size=150, pen=10, stretch=1.5)[..., 3])
    narrow = ink_box(uji.render(one, size=150, pen=10)[..., 3])
    assert wide[3] - wide[2] > 1.2 * (narrow[3] - narrow[2])


def test_training_forms_are_mnist_style_deterministic_and_vary(digits):
    train, _ = uji.split_writers(digits)
    images, labels = uji.training_forms(train[:10], 20, seed=1)
    again, _ = uji.training_forms(train[:10], 20, seed=1)
    other, _ = uji.training_forms(train[:10], 20, seed=2)
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert list(labels) == [d.digit for d in train[:10]] * 2
    # The same digit twice, drawn two ways.
    assert not np.array_equal(images[0], images[10])
    for image in images:
        ys, xs = np.nonzero(image)
        assert max(np.ptp(ys), np.ptp(xs)) in (19, 20, 21) and image.max() == 255


def test_bend_moves_strokes_a_little_each_on_its_own(digits):
    seven = next(d for d in digits if d.digit == 7 and len(d.strokes) == 2)
    rng = np.random.default_rng(0)
    assert uji.bend(seven.strokes, rng, 0.0) is seven.strokes
    extent = np.ptp(np.concatenate(seven.strokes), axis=0).max()
    moves = []
    for i in range(50):
        bent = uji.bend(seven.strokes, np.random.default_rng(i), 1.0)
        assert [s.shape for s in bent] == [s.shape for s in seven.strokes]
        shift = [(b - s).mean(axis=0) for b, s in zip(bent, seven.strokes, strict=True)]
        moves.append(np.linalg.norm(shift[0] - shift[1]) / extent)
        # Every point stays near where the writer put it.
        for b, s in zip(bent, seven.strokes, strict=True):
            assert np.abs(b - s).max() < 0.4 * extent
    # The crossbar moves against the stem by a few percent of the digit, differently each time.
    assert 0.02 < np.median(moves) < 0.15 and np.std(moves) > 0.01
    # The same generator state, the same bend.
    again = [uji.bend(seven.strokes, np.random.default_rng(3), 1.0) for _ in range(2)]
    np.testing.assert_array_equal(np.concatenate(again[0]), np.concatenate(again[1]))


def test_training_forms_bend_only_when_asked(digits):
    train, _ = uji.split_writers(digits)
    plain, _ = uji.training_forms(train[:10], 10, seed=1)
    unbent, _ = uji.training_forms(train[:10], 10, seed=1, bend_amount=0.0)
    bent, labels = uji.training_forms(train[:10], 10, seed=1, bend_amount=1.5)
    np.testing.assert_array_equal(plain, unbent)
    assert all(not np.array_equal(a, b) for a, b in zip(plain, bent, strict=True))
    assert list(labels) == [d.digit for d in train[:10]]
