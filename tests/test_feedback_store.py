"""The feedback store and its CLI, on SQLite and on a real PostgreSQL server."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from conftest import start_server, stop_server
from postgres import new_database, postgres_server

import settings
from client.__main__ import main as client_main
from feedback.__main__ import main as feedback_main
from feedback.idx import idx_zip, write_idx
from feedback.split import HELD_ASIDE_PERCENT, held_aside
from feedback.store import StoreError, head_revision, open_store
from feedback.tables import metadata
from settings import NOT_A_DIGIT, NOT_A_DIGIT_MARK
from train.data import load_idx, read_idx

ROOT = Path(__file__).resolve().parents[1]
PNG = cv2.imencode(".png", np.zeros((280, 280), np.uint8))[1].tobytes()  # a blank canvas


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path) -> str:
    """A new, empty store's location: an SQLite file path, or a PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store" / "feedback.sqlite")  # the folder is made on open
    return new_database(request.getfixturevalue("postgres_url"))


def digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((28, 28), dtype=np.float32)


def test_a_drawing_keeps_everything_a_correction_needs(location):
    store = open_store(location)
    probabilities = np.full((2, 10), 0.05)
    probabilities[:, 1] = 0.55
    first, second = digit(0), digit(1)
    answer = {"prediction": "11", "probabilities": probabilities}
    drawing_id = store.add(
        PNG, [first, second], "17", "canvas", **answer, model_name="mnist", model_version=3
    )
    (found,) = store.drawings()
    assert found.id == drawing_id
    assert (found.label, found.prediction, found.source) == ("17", "11", "canvas")
    assert (found.model_name, found.model_version, found.png) == ("mnist", 3, PNG)
    np.testing.assert_allclose(found.probabilities, probabilities, atol=1e-6)
    assert found.created.year >= 2025
    stored = store.digits()
    assert stored.labels.tolist() == [1, 7] and stored.drawing_ids.tolist() == [drawing_id] * 2
    assert stored.images.dtype == np.uint8 and stored.images.shape == (2, 28, 28)
    # As the model saw them, to the nearest of 256 levels.
    np.testing.assert_allclose(stored.images[1] / 255, second, atol=0.5 / 255 + 1e-6)
    assert store.count() == 1
    assert store.label_counts() == {**dict.fromkeys(range(10), 0), 1: 1, 7: 1, NOT_A_DIGIT: 0}
    store.close()
    # Opened again (already migrated), it still holds it.
    again = open_store(location)
    assert [d.label for d in again.drawings(with_png=False)] == ["17"]
    again.close()


@pytest.mark.parametrize(
    "label,count,message",
    [
        ("7", 2, "the model saw 2 digits here, so the label needs 2, not 1"),
        ("seven", 1, "the label must be a number"),
        ("", 1, "the label must be a number"),
        ("٣", 1, "the label must be a number"),  # a digit, but not 0-9
        ("*", 1, "the label must be a number"),
        (f"7{NOT_A_DIGIT_MARK}", 1, "the model saw 1 digit here, so the label needs 1, not 2"),
    ],
)
def test_a_label_that_does_not_fit_is_refused_and_nothing_stored(tmp_path, label, count, message):
    store = open_store(str(tmp_path / "s.sqlite"))
    with pytest.raises(StoreError, match=message):
        store.add(PNG, [digit(i) for i in range(count)], label, "canvas")
    assert store.count() == 0 and len(store.digits().labels) == 0


def test_a_piece_that_is_not_a_digit_keeps_the_mark_and_is_stored_as_its_class(location, tmp_path):
    store = open_store(location)
    mark = NOT_A_DIGIT_MARK
    store.add(PNG, [digit(0), digit(1)], f"1{mark}", "canvas", prediction=f"1{mark}")
    store.add(PNG, [digit(2)], f" {mark} ", "upload", prediction="4")
    assert [(d.label, d.prediction) for d in store.drawings()] == [
        (mark, "4"),
        (f"1{mark}", f"1{mark}"),
    ]
    found = store.digits()
    assert found.labels.tolist() == [1, NOT_A_DIGIT, NOT_A_DIGIT]
    assert store.label_counts() == {**dict.fromkeys(range(10), 0), 1: 1, NOT_A_DIGIT: 2}
    # The IDX export keeps the class as its label byte, for the trainer to read.
    paths = write_idx(found, tmp_path / "idx")
    labels = [read_idx(p) for p in paths if p.name.endswith("labels-idx1-ubyte")]
    assert sorted(np.concatenate(labels).tolist()) == [1, NOT_A_DIGIT, NOT_A_DIGIT]
    store.close()


def test_delete_one_and_delete_all(location):
    store = open_store(location)
    ids = [store.add(PNG, [digit(i)], str(i), "upload") for i in range(3)]
    assert store.delete([ids[1], 999]) == 1
    assert [d.id for d in store.drawings()] == [ids[2], ids[0]]  # newest first
    assert store.digits().labels.tolist() == [0, 2]  # its digit went with it
    assert store.delete_all() == 2
    assert store.count() == 0 and len(store.digits().labels) == 0


def test_migrations_build_exactly_the_tables_the_code_uses(location):
    """What feedback/tables.py declares and what the migrations made agree (alembic's own
    comparison finds nothing to change), and the store records the newest revision."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    store = open_store(location)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, metadata) == []
    store.close()


def test_a_store_from_a_newer_product_is_refused_with_one_line(location):
    store = open_store(location)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    store.close()
    with pytest.raises(StoreError) as error:
        open_store(location)
    assert "schema revision ffff, newer than this version of the product" in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unreachable_store_is_one_line(tmp_path, postgres_url):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot make the folder"):
        open_store(str(blocker / "feedback.sqlite"))
    wrong_port = postgres_url.replace("port=", "port=1", 1)
    with pytest.raises(StoreError) as error:
        open_store(wrong_port.replace("postgres@", "postgres:secret@", 1))
    assert "cannot open the feedback store postgresql" in str(error.value)
    assert "secret" not in str(error.value) and "\n" not in str(error.value)


def test_held_aside_is_fixed_by_id_and_about_the_share():
    assert [i for i in range(1, 30) if held_aside(i)] == [i for i in range(1, 30) if held_aside(i)]
    share = np.mean([held_aside(i) for i in range(1, 5001)])
    assert abs(share - HELD_ASIDE_PERCENT / 100) < 0.02
    # Not a pattern of the id's last digit: a bulk import sorted by label stays mixed.
    assert len({i % 10 for i in range(1, 200) if held_aside(i)}) == 10


def test_the_default_store_is_set_once_and_the_environment_overrides_it(monkeypatch):
    monkeypatch.delenv("FEEDBACK_DB", raising=False)
    assert settings.feedback_db() == str(ROOT / "data" / "feedback.sqlite")
    monkeypatch.setenv("FEEDBACK_DB", "postgresql://app@db/feedback")
    assert settings.feedback_db() == "postgresql://app@db/feedback"


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory) -> str:
    """The local model server: `client add` reads images through its predict_image, as the app
    does (the tiny model's answers are poor, its view of each digit is the real one)."""
    process, url = start_server(tiny_model_base, tmp_path_factory.mktemp("server"))
    yield url
    stop_server(process)


# --- python -m client add, python -m feedback ------------------------------------------------


def scans(folder: Path, count: int, digit_label: int = 7) -> list[Path]:
    """Real handwritten digits of one label (scikit-learn's) as black-on-white PNG scans."""
    from train.canvas_digits import sklearn_digits

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (canvas, label) in enumerate(sklearn_digits()):
        if label == digit_label:
            path = folder / f"scan-{digit_label}-{i}.png"
            cv2.imwrite(str(path), 255 - canvas[..., 3])  # its ink, dark on white paper
            paths.append(path)
            if len(paths) == count:
                return paths
    raise AssertionError(f"fewer than {count} digits {digit_label}")


def test_cli_add_stats_export_delete(server, tmp_path, capsys):
    db = str(tmp_path / "feedback.sqlite")
    sevens = scans(tmp_path / "scans", 12)
    add = ["add", "--db", db, "--server", server, "--label"]
    assert client_main([*add, "7", *map(str, sevens)]) == 0
    assert f"added 12 drawings of 7; the store now holds 12 ({db})" in capsys.readouterr().out
    # Where the command was before, it says where it is now.
    assert feedback_main([*add, "7", str(sevens[0])]) == 2
    assert "error: images are added with `python -m client add`" in capsys.readouterr().err

    # Files it cannot use are named with the reason; the others are added.
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not an image")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((50, 50), 255, np.uint8))
    argv = ["add", "--label", "1", str(bad), str(blank), str(tmp_path / "gone.png")]
    argv += [*map(str, scans(tmp_path / "ones", 3, 1)), "--db", db, "--server", server]
    assert client_main(argv) == 1
    out, err = capsys.readouterr()
    assert "added 3 drawings of 1; the store now holds 15" in out
    assert f"skipped {bad}: notes.png is not an image that can be read" in err
    assert f"skipped {blank}: no digit found" in err
    assert f"skipped {tmp_path / 'gone.png'}: cannot read it" in err
    assert "3 of 6 files skipped" in err
    # One digit drawn, two in the label: refused, with why.
    assert client_main([*add, "77", str(sevens[0])]) == 1
    assert "the model saw 1 digit here, so the label needs 1, not 2" in capsys.readouterr().err

    assert feedback_main(["stats", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "15 drawings (15 digits): 15 import" in out
    assert "digits by label: 0: 0  1: 3  2: 0" in out and "7: 12" in out
    aside = sum(held_aside(i) for i in range(1, 16))
    assert f"(about 20%): {aside} drawing" in out

    # The export is MNIST's IDX format, as python -m train --data idx:DIR reads it.
    assert feedback_main(["export", "--idx", str(tmp_path / "idx"), "--db", db]) == 0
    assert f"--data idx:{tmp_path / 'idx'}" in capsys.readouterr().out
    exported = load_idx(tmp_path / "idx")
    assert len(exported.y_test) == aside and len(exported.y_train) == 15 - aside
    assert sorted([*exported.y_train, *exported.y_test]) == [1] * 3 + [7] * 12
    store = open_store(db)
    stored = store.digits()
    aside_mask = np.array([held_aside(i) for i in stored.drawing_ids])
    np.testing.assert_array_equal(exported.x_train, stored.images[~aside_mask])
    np.testing.assert_array_equal(exported.x_test, stored.images[aside_mask])
    assert len(idx_zip(stored)) > 100
    # Stored as the app would see them: each digit scaled to fill a 20x20 box.
    for image in stored.images:
        rows, cols = np.nonzero(image)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 in (20, 21)

    assert feedback_main(["delete", "1", "2", "--db", db]) == 0
    assert "deleted 2 drawings" in capsys.readouterr().out
    assert feedback_main(["delete", "--all", "--db", db]) == 0
    assert "deleted 13 drawings" in capsys.readouterr().out
    assert feedback_main(["delete", "--db", db]) == 2
    assert "give the ids of the drawings to delete, or --all" in capsys.readouterr().err
    assert feedback_main(["stats", "--db", f"sqlite:///{db}"]) == 0
    assert "no drawings yet" in capsys.readouterr().out


def test_cli_says_in_one_line_when_the_store_cannot_be_opened(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert feedback_main(["stats", "--db", str(tmp_path / "file" / "x.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot make the folder") and err.count("\n") == 1
    assert feedback_main(["stats", "--db", "nosuchdb://x"]) == 2
    assert capsys.readouterr().err.startswith("error: cannot use nosuchdb://x")


def test_several_processes_write_at_once(location, server, tmp_path):
    """Three `python -m client add` processes, started together on a new store: they race to
    create its tables, then add a drawing each per transaction, interleaved. None fails."""
    writers, each = 3, 8
    files = scans(tmp_path / "scans", each)
    command = [sys.executable, "-m", "client", "add", "--label", "7", *map(str, files)]
    command += ["--db", location, "--server", server]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    processes = [subprocess.Popen(command, cwd=ROOT, **pipes) for _ in range(writers)]
    outputs = [p.communicate(timeout=180) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert f"added {each} drawings of 7" in out
    store = open_store(location)
    assert store.count() == writers * each
    assert store.digits().labels.tolist() == [7] * writers * each
    store.close()


def test_cli_add_without_a_model_server_says_so_and_adds_nothing(tmp_path, capsys):
    db = str(tmp_path / "feedback.sqlite")
    sevens = scans(tmp_path / "scans", 2)
    argv = ["add", "--label", "7", *map(str, sevens), "--db", db, "--server", "http://127.0.0.1:9"]
    assert client_main(argv) == 2
    err = capsys.readouterr().err
    assert "error: Cannot reach the model server at http://127.0.0.1:9" in err
    assert "added 0 drawings before that" in err
    assert open_store(db).count() == 0


def test_cli_adds_images_that_are_not_digits(server, tmp_path, capsys):
    db = str(tmp_path / "feedback.sqlite")
    files = []
    for i, size in enumerate([60, 90]):  # a square's outline on paper: one piece, no digit
        paper = np.full((200, 200), 255, np.uint8)
        cv2.rectangle(paper, (40, 40), (40 + size, 40 + size), 0, 12)
        files.append(tmp_path / f"square-{i}.png")
        cv2.imwrite(str(files[-1]), paper)
    argv = ["add", "--label", NOT_A_DIGIT_MARK, *map(str, files), "--db", db, "--server", server]
    assert client_main(argv) == 0
    assert f"added 2 drawings of {NOT_A_DIGIT_MARK}" in capsys.readouterr().out
    assert feedback_main(["stats", "--db", db]) == 0
    assert f"not a digit ({NOT_A_DIGIT_MARK}): 2" in capsys.readouterr().out
    store = open_store(db)
    assert store.digits().labels.tolist() == [NOT_A_DIGIT] * 2
    assert [d.label for d in store.drawings()] == [NOT_A_DIGIT_MARK] * 2
    store.close()
