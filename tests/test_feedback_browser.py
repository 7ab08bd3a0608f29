"""People's corrections in real Chromium: draw, mark the answer wrong, pick the right digit; the
store holds it with that label and the version that answered; the page "Your drawings" lists it.

The local server (sample model) and the app on free ports, the app's store a temporary SQLite file
(FEEDBACK_DB). Skipped when Chromium is missing, except under CI=true.
"""

import io
import os
import re
import shutil

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import shown, start_server, stop_server
from PIL import Image
from test_browser import draw, prediction, start_app

import settings
from feedback.store import open_store, plural


@pytest.fixture(scope="module")
def stack(browser, sample_model_base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("feedback_browser")
    base = tmp / settings.MODEL_NAME
    shutil.copytree(sample_model_base, base)
    db = tmp / "data" / "feedback.sqlite"
    server, serving_url = start_server(base, tmp)
    before = os.environ.get("FEEDBACK_DB")
    os.environ["FEEDBACK_DB"] = str(db)  # the app takes its store from its environment
    try:
        app, app_url = start_app(serving_url, tmp)
    finally:
        if before is None:
            del os.environ["FEEDBACK_DB"]
        else:
            os.environ["FEEDBACK_DB"] = before
    yield {"db": str(db), "app_url": app_url}
    stop_server(app)
    stop_server(server)


def stored(db: str) -> list:
    store = open_store(db)
    try:
        return store.drawings()
    finally:
        store.close()


def test_a_wrong_answer_is_corrected_stored_and_listed(page, stack):
    draw(page, "1")
    shown(prediction(page, "1"))
    shown(page.get_by_role("button", name="Right"))
    assert stored(stack["db"]) == []  # nothing is saved without a click
    # Wrong: it is a 7 (as far as this test knows).
    page.get_by_role("button", name="7", exact=True).click()
    shown(page.get_by_text("Saved — 1 drawing so far."))
    assert page.get_by_role("button", name="Right").count() == 0  # saved once, not again
    (record,) = stored(stack["db"])
    assert (record.label, record.prediction, record.source) == ("7", "1", "canvas")
    assert (record.model_name, record.model_version) == (settings.MODEL_NAME, 1)
    assert np.asarray(record.probabilities).shape == (1, 10)
    assert Image.open(io.BytesIO(record.png)).size == (280, 280)
    digits = open_store(stack["db"]).digits()
    assert digits.labels.tolist() == [7] and digits.images[0].max() > 200

    page.get_by_role("link", name="Your drawings").click()
    shown(page.get_by_text("1 drawing, 1 digit"))
    shown(page.get_by_text("7 · read 1 by v1"))
    shown(page.get_by_text(re.compile(rf"^#{record.id} · ")))
    shown(page.get_by_role("button", name="Download as IDX (zip)"))
    # How the loaded version reads the stored digit, asked of the server.
    shown(page.get_by_role("columnheader", name="all (1)"))
    assert page.get_by_text("Traceback").count() == 0

    page.get_by_role("button", name="Delete", exact=True).click()
    shown(page.get_by_text("No drawings yet"))
    assert stored(stack["db"]) == []


def test_a_number_is_corrected_in_a_text_field(page, stack):
    count = len(stored(stack["db"]))
    draw(page, "1", left=0.02, width=0.4)
    draw(page, "7", left=0.5, width=0.45)
    shown(prediction(page, "17"))
    field = page.get_by_placeholder("17")
    field.fill("7")
    field.press("Enter")
    page.get_by_role("button", name="Save").click()
    shown(page.get_by_text("Not saved: the model saw 2 digits here, so the label needs 2"))
    shown(prediction(page, "17"))  # the drawing and its answer stay
    assert len(stored(stack["db"])) == count
    field.fill("71")
    field.press("Enter")
    page.get_by_role("button", name="Save").click()
    shown(page.get_by_text(f"Saved — {count + 1} drawing{'s' if count else ''} so far."))
    record = stored(stack["db"])[0]  # the newest
    assert (record.label, record.prediction, record.model_version) == ("71", "17", 1)
    assert open_store(stack["db"]).digits().labels.tolist()[-2:] == [7, 1]


def test_a_piece_that_is_not_a_digit_is_corrected_as_such(page, stack):
    mark = settings.NOT_A_DIGIT_MARK
    count = len(stored(stack["db"]))
    # One piece: the button "Not a digit".
    draw(page, "1")
    shown(prediction(page, "1"))
    page.get_by_role("button", name="Not a digit").click()
    shown(page.get_by_text(f"Saved — {plural(count + 1, 'drawing')} so far."))
    assert (stored(stack["db"])[0].label, stored(stack["db"])[0].prediction) == (mark, "1")
    # A number: the mark where its piece is, typed in the label.
    page.get_by_role("button", name="Reset canvas & history").click()
    draw(page, "1", left=0.02, width=0.4)
    draw(page, "7", left=0.5, width=0.45)
    shown(prediction(page, "17"))
    field = page.get_by_placeholder("17")
    field.fill(f"1{mark}")
    field.press("Enter")
    page.get_by_role("button", name="Save").click()
    shown(page.get_by_text(f"Saved — {count + 2} drawings so far."))
    assert stored(stack["db"])[0].label == f"1{mark}"
    labels = open_store(stack["db"]).digits().labels.tolist()
    assert labels[-3:] == [settings.NOT_A_DIGIT, 1, settings.NOT_A_DIGIT]

    # Counted apart from the digits, and read again by the loaded version.
    page.get_by_role("link", name="Your drawings").click()
    shown(page.get_by_role("columnheader", name=f"{mark} (not a digit)"))
    shown(page.get_by_text(f"{mark} · read 1 by v1"))
    shown(page.get_by_text(f"1{mark} · read 17 by v1"))
    shown(page.get_by_role("columnheader", name=f"all ({len(labels)})"))
    assert page.get_by_text("Traceback").count() == 0


def test_a_failure_to_save_says_why_and_keeps_the_drawing(page, stack):
    # Last: it breaks the store. Its digits table gone, a save fails and leaves nothing half-done.
    count = len(stored(stack["db"]))
    engine = sa.create_engine(f"sqlite:///{stack['db']}")
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE digits"))
    engine.dispose()
    draw(page, "7")
    shown(prediction(page, "7"))
    page.get_by_role("button", name="Right").click()
    why = re.compile(r"^Not saved: could not save the drawing in .*no such table")
    shown(page.get_by_text(why))
    shown(page.get_by_text("Your drawing is still here; try again.", exact=False))
    shown(prediction(page, "7"))
    assert page.get_by_role("button", name="Right").count() == 1  # to try again
    assert page.get_by_text("Traceback").count() == 0
    with sa.create_engine(f"sqlite:///{stack['db']}").connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM drawings")).scalar() == count
