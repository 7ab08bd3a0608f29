"""The optdigits training writers' 8x8 scans: the reader and their training forms."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from train import optdigits

# The UCI database's own count of each digit in its training set (optdigits.names).
CLASS_COUNTS = [376, 389, 380, 389, 387, 376, 377, 387, 380, 382]


@pytest.fixture(scope="module")
def shipped() -> tuple[np.ndarray, np.ndarray]:
    return optdigits.read()


def test_the_shipped_file_is_the_databases_training_set(shipped):
    grids, labels = shipped
    assert grids.shape == (3823, 8, 8) and grids.dtype == np.float32
    assert np.bincount(labels).tolist() == CLASS_COUNTS
    assert grids.min() == 0 and grids.max() == 1


def test_no_scan_is_one_of_scikit_learns_digits(shipped):
    # scikit-learn's digits are the database's test writers, the dev set: none may train.
    grids, _ = shipped
    dev = {row.tobytes() for row in load_digits().images.astype(np.uint8).reshape(-1, 64)}
    train = {row.tobytes() for row in np.round(grids * 16).astype(np.uint8).reshape(-1, 64)}
    assert len(train) > 3800 and not train & dev


def test_reader_gives_grids_and_digits(tmp_path):
    path = tmp_path / "two.tra"
    counts = list(range(17)) + [16] * 47
    path.write_text(",".join(map(str, [*counts, 7])) + "\n" + ",".join(["0"] * 64 + ["1"]) + "\n")
    grids, labels = optdigits.read(path)
    assert labels.tolist() == [7, 1]
    assert grids[0, 0, :3].tolist() == [0, 1 / 16, 2 / 16] and grids[0, 2, 0] == 1
    assert not grids[1].any()


@pytest.mark.parametrize(
    "line, message",
    [
        ("1,2,3", r"two.tra:2: 3 values, expected 64 counts and a digit"),
        (",".join(["0"] * 64 + ["x"]), r"two.tra:2: not a line of integers"),
        (",".join(["17"] + ["0"] * 63 + ["1"]), r"two.tra:2: counts must be 0..16, the digit 0..9"),
        (",".join(["0"] * 64 + ["10"]), r"two.tra:2: counts must be"),
    ],
)
def test_a_malformed_file_names_its_line(tmp_path, line, message):
    path = tmp_path / "two.tra"
    path.write_text(",".join(["0"] * 64 + ["3"]) + "\n" + line + "\n")
    with pytest.raises(optdigits.OptdigitsError, match=message):
        optdigits.read(path)
    path.write_text("\n")
    with pytest.raises(optdigits.OptdigitsError, match="no digits"):
        optdigits.read(path)
    with pytest.raises(optdigits.OptdigitsError, match="cannot read"):
        optdigits.read(tmp_path / "missing.tra")


def test_training_forms_are_mnist_style_each_scan_once_before_twice(shipped):
    grids, labels = shipped[0][:50], shipped[1][:50]
    images, drawn = optdigits.training_forms(grids, labels, 75, seed=3)
    again, _ = optdigits.training_forms(grids, labels, 75, seed=3)
    np.testing.assert_array_equal(images, again)
    assert images.shape == (75, 28, 28) and images.dtype == np.uint8
    # The first 50 are every scan once (labels in some order), the rest a second pass.
    assert sorted(drawn[:50]) == sorted(labels) and set(drawn[50:]) <= set(labels)
    for image in images:
        ys, xs = np.nonzero(image)
        assert image.max() == 255 and np.ptp(ys) <= 21 and np.ptp(xs) <= 21
    # Cut into ink, a form is nearly black and white; in grey, a stroke fades at its edges.
    ink, _ = optdigits.training_forms(grids, labels, 20, seed=3, grey=0.0)
    grey, _ = optdigits.training_forms(grids, labels, 20, seed=3, grey=1.0)
    assert half_tone_share(grey) > 2 * half_tone_share(ink)


def half_tone_share(images: np.ndarray) -> float:
    """The share of inked pixels that are neither near white nor near full ink."""
    return ((images > 40) & (images < 215)).sum() / (images > 0).sum()
