"""`make run` on a fresh copy of the repository: a quick first model, then the full one swapped in.

scripts/start_server_and_app.py runs for real in a copy of the repository (its own .env with free
ports, no models), with a tiny schedule for both trainings (MAKE_RUN_TRAIN_FLAGS). Chromium draws
while the full model trains in the background, sees the app's banner show its progress and then
name the version that answers, and gets an answer before and after the swap. Then Ctrl-C, and a
second run that only serves. Skipped without Chromium, except under CI=true.
"""

import os
import re
import sys
import time

import fresh_copy
import pytest
import requests
from conftest import shown, wait_for
from fresh_copy import FOREIGN, copy_repository, interrupt
from test_browser import draw, prediction

import settings

TINY = (
    "--data sample --limit 600 --epochs 1 --continental-forms 50 --lowres-forms 50 "
    "--uji-forms 50 --optdigits-forms 50"
)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh") / "repo"
    return root, copy_repository(root)


def launch(root, output):
    # Without MNIST_DIR, so that TINY's --data sample is the only data named.
    env = {k: v for k, v in os.environ.items() if k != "MNIST_DIR"}
    return fresh_copy.launch(root, output, {**env, "MAKE_RUN_TRAIN_FLAGS": TINY})


def test_first_run_serves_a_quick_model_then_swaps_in_the_full_one(browser, fresh):
    root, ports = fresh
    output = root / "terminal.txt"
    with open(output, "wb") as terminal:
        process = launch(root, terminal)
    try:
        app = f"http://localhost:{ports['CLIENT_PORT']}"
        wait_for(lambda: "Draw a digit:" in output.read_text(), 300, "the first model")
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app)
        shown(page.locator("canvas.upper-canvas"))
        shown(page.get_by_text(re.compile("The full model is training in the background")))
        draw(page, "1")
        shown(prediction(page, r"\d"))  # the quick model answers meanwhile
        shown_swap = page.get_by_text(re.compile(r"^Version 2, the full model, answers now"))
        shown_swap.wait_for(timeout=300_000)
        page.get_by_role("button", name="Reset canvas & history").click()
        draw(page, "7")
        shown(prediction(page, r"\d"))
        page.close()
        status = f"http://localhost:{ports['REST_API_PORT']}/v1/models/{settings.MODEL_NAME}"
        states = {
            v["version"]: v["state"] for v in requests.get(status).json()["model_version_status"]
        }
        assert states["2"] == "AVAILABLE"
    finally:
        interrupt(process)
    text = output.read_text()
    assert "The full model is exported as version 2" in text
    assert not FOREIGN.search(text), text
    assert "make-run.log" in text  # where those lines went, named once

    # A second run: the full model exists, so it only serves.
    with open(output, "wb") as terminal:
        process = launch(root, terminal)
    try:
        wait_for(lambda: "Draw a digit:" in output.read_text(), 120, "the second run")
        time.sleep(1)
    finally:
        interrupt(process)
    text = output.read_text()
    assert "training" not in text.lower(), text


@pytest.mark.parametrize(
    "state, pending",
    [(None, False), ("queued", True), ("training", True), ("exporting", True), ("exported", False)],
)
def test_an_interrupted_full_training_is_taken_up_again(tmp_path, monkeypatch, state, pending):
    """Ctrl-C (or a crash) leaves the progress file short of "exported": the next `make run`
    trains the full model again. Versions without a progress file were made some other way."""
    sys.path.insert(0, str(settings.ROOT / "scripts"))
    try:
        import start_server_and_app as launcher
    finally:
        sys.path.remove(str(settings.ROOT / "scripts"))
    from train import progress

    monkeypatch.setattr(settings, "TRAINING_PROGRESS", tmp_path / "training.json")
    if state is not None:
        progress.write(settings.TRAINING_PROGRESS, state=state, fraction=0.5)
    assert launcher.full_model_pending() == pending
