"""The app in real Chromium when a version says a drawing is not a digit: the message instead of
the digit, with the model's best guess, and the not-a-digit mark for such a piece of a number.

A real version decides it: the sample model exported again, through export/saved_model.py, with a
threshold that refuses every image, as the next version; the local server swaps it in while the
app runs. Skipped when Chromium is missing, except under CI=true.
"""

import re
import shutil

import cv2
import numpy as np
import pytest
from conftest import shown, start_server, stop_server
from test_browser import draw, prediction, start_app

import settings
from client import results

# Above any digit_score (0..1): the version refuses every image (export_version's docstring).
REFUSE_ALL = 2.0


@pytest.fixture(scope="module")
def stack(browser, sample_model_base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("not_a_digit_browser")
    base = tmp / settings.MODEL_NAME
    shutil.copytree(sample_model_base, base)
    server, serving_url = start_server(base, tmp)
    app, app_url = start_app(serving_url, tmp)
    yield {"base": base, "app_url": app_url}
    stop_server(app)
    stop_server(server)


def export_refusing_everything(base) -> None:
    """Version 1's own network, exported again as the next version with REFUSE_ALL."""
    import keras

    from export.saved_model import ASSETS_EXTRA, KERAS_FILE, export_version

    model = keras.saving.load_model(base / "1" / ASSETS_EXTRA / KERAS_FILE)
    export_version(model, base, {"note": "refuses every image"}, threshold=REFUSE_ALL)


def test_a_drawing_that_is_no_digit_says_so_and_a_number_marks_it(page, stack):
    mark = settings.NOT_A_DIGIT_MARK
    # Version 1 takes a clear 7 for a digit.
    draw(page, "7")
    shown(prediction(page, "7"))
    assert page.get_by_text(results.NOT_A_DIGIT_MESSAGE).count() == 0

    export_refusing_everything(stack["base"])
    shown(page.get_by_text("Now serving latest: v2"))
    page.get_by_role("button", name="Reset canvas & history").click()
    draw(page, "7")
    shown(page.get_by_text(results.NOT_A_DIGIT_MESSAGE))
    shown(page.get_by_text(re.compile(r"^best guess: \d, \d+%$")))
    shown(page.get_by_text(re.compile(r"Answered by version 2 ")))
    assert page.get_by_text(re.compile(r"^Prediction:")).count() == 0
    # Already what the model says: confirming it is "Right"; "Not a digit" is not offered again.
    assert page.get_by_role("button", name="Not a digit").is_disabled()

    # A number: each piece refused is the mark, its best guess beside it.
    page.get_by_role("button", name="Reset canvas & history").click()
    draw(page, "1", left=0.02, width=0.4)
    draw(page, "7", left=0.5, width=0.45)
    shown(prediction(page, re.escape(mark * 2)))
    shown(page.get_by_text(re.compile(rf"^Digit by digit: {re.escape(mark)} \(best guess: \d")))
    assert page.get_by_text(results.NOT_A_DIGIT_MESSAGE).count() == 0

    # A photo of one digit on paper: the same message.
    paper = np.full((300, 240, 3), 245, np.uint8)
    cv2.polylines(paper, [np.array([[40, 50], [180, 50], [95, 260]])], False, (20, 20, 20), 16)
    page.get_by_role("radio", name="Upload a photo").click()
    png = cv2.imencode(".png", paper)[1].tobytes()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "seven.png", "mimeType": "image/png", "buffer": png}]
    )
    shown(page.get_by_text(results.NOT_A_DIGIT_MESSAGE))
    assert page.get_by_text("Traceback").count() == 0
