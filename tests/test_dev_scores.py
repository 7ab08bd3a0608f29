"""tests/dev_scores.py (what bench/dev_scores.py prints) on a real exported version (the tiny
fixture) and a few dev canvases."""

import itertools

import numpy as np
import pytest

from tests import dev_scores, devsets
from train import uji


def canvases_set(name, samples, n):
    return dev_scores.preprocess(name, itertools.islice(samples, n))


def test_preprocess_marks_empty_canvases_as_no_digit():
    blank = np.zeros((280, 280, 4), np.uint8)
    samples = [(blank, 3), *itertools.islice(devsets.continental_7(n=2), 2)]
    s = dev_scores.preprocess("mixed", samples)
    assert list(s.found) == [False, True, True]
    assert s.images.shape == (3, 28, 28) and s.images[0].max() == 0 and s.images[1].max() == 1.0
    assert list(s.labels) == [3, 7, 7]


def test_version_folders_finds_numbered_versions_or_takes_one(tiny_model_base, tmp_path):
    assert dev_scores.version_folders([tiny_model_base]) == [tiny_model_base / "1"]
    assert dev_scores.version_folders([tiny_model_base / "1"]) == [tiny_model_base / "1"]
    with pytest.raises(SystemExit, match="no model versions"):
        dev_scores.version_folders([tmp_path])


def test_a_missing_mnist_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match=r"no such folder .*; give the folder with --mnist DIR"):
        dev_scores.load_mnist_test(tmp_path / "nope")


def test_evaluate_scores_each_set_with_the_exported_signature(tiny_model_base, capsys):
    folder = tiny_model_base / "1"
    sets = [
        canvases_set("continental_1", devsets.continental_1(n=4), 4),
        canvases_set("continental_7", devsets.continental_7(n=4), 4),
    ]
    blank = dev_scores.preprocess("blank", [(np.zeros((280, 280, 4), np.uint8), 5)])
    result = dev_scores.evaluate(folder, [*sets, blank])

    probabilities = dev_scores.predict(folder, np.concatenate([s.images for s in sets]))
    for (name, n, accuracy, _), s, p in zip(
        result["rows"], sets, np.split(probabilities, 2), strict=False
    ):
        assert name == s.name and n == 4
        assert accuracy == pytest.approx((p.argmax(axis=1) == s.labels).mean())
    # A canvas without a digit is a wrong answer with no confidence at all.
    assert result["rows"][2][2] == 0.0 and result["confidence"][-1] == 0.0
    assert len(result["correct"]) == 9

    dev_scores.print_version(folder, result, (0.5, 0.9))
    out = capsys.readouterr().out
    assert "continental_7" in out and "not sure" in out and "5->none (1)" in out


def test_given_probabilities_are_scored_as_a_versions_own(tiny_model_base):
    # --average scores the versions' mean probabilities this way.
    folder = tiny_model_base / "1"
    sets = [canvases_set("continental_7", devsets.continental_7(n=4), 4)]
    alone = dev_scores.evaluate(folder, sets)
    given = dev_scores.evaluate(None, sets, np.mean([alone["probabilities"]] * 2, axis=0))
    assert given["rows"] == alone["rows"]
    assert np.array_equal(given["confidence"], alone["confidence"])


def test_uji_is_scored_writer_by_writer_on_the_fold_a_version_never_saw(tiny_model_base, capsys):
    digits = uji.read()[:40]  # the first two writers
    s = dev_scores.preprocess(
        "uji", itertools.islice(devsets.uji_digits(), 40), [d.writer for d in digits]
    )
    result = dev_scores.evaluate(tiny_model_base / "1", [s])
    writers = result["by_writer"]["uji"]
    assert sorted(w for w, *_ in writers) == sorted({d.writer for d in digits})
    assert [n for _, n, *_ in writers] == [20, 20]
    assert writers[0][2] <= writers[1][2]  # worst first
    predicted = result["probabilities"].argmax(axis=1)
    for writer, _, accuracy, _ in writers:
        mine = s.writers == writer
        assert accuracy == pytest.approx((predicted[mine] == s.labels[mine]).mean())
    assert np.mean([a for _, _, a, _ in writers]) == pytest.approx(result["rows"][0][2])
    dev_scores.print_version(tiny_model_base / "1", result, (0.9,))
    out = capsys.readouterr().out
    assert "uji by writer: 2 writers, lowest" in out and writers[0][0] in out

    # A fold keeps its own writers' digits only, in order.
    first = digits[0].writer
    fold = next(k for k, f in enumerate(uji.FOLDS) if first in f)
    part = dev_scores.fold_only(s, uji.FOLDS[fold])
    assert set(part.writers) == {first} and len(part.labels) == 20
    assert np.array_equal(part.images, s.images[s.writers == first])
    # The tiny fixture trained on every writer: no fold to score it on.
    assert dev_scores.held_out_fold(tiny_model_base / "1") is None
