"""The local server against requests meant to freeze it, bloat it, or keep a good version out.

Each slow or heavy request runs while a steady client sends ordinary predictions on its own
connection; that client must see every answer.
"""

import base64
import io
import resource
import shutil
import threading
import uuid

import numpy as np
import pytest
import requests
from conftest import serving_in_process
from image_files import huge_webp, png_of_size
from PIL import Image

from client import preprocess
from feedback.store import StoreError, open_store
from serving.config import ModelConfig
from serving.versions import Manager
from settings import IMAGE_SIGNATURE_NAME, MAX_PIXELS, SIGNATURE_NAME

METRICS_PATH = "/monitoring/prometheus/metrics"
PREDICT = "/v1/models/mnist:predict"
IMAGE = [[[0.0]] * 28] * 28
# The steady client's patience for one answer: far above an ordinary answer's few milliseconds,
# far below what one frozen loop used to cost everyone.
STEADY_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory):
    base = tmp_path_factory.mktemp("hardening") / "mnist"
    shutil.copytree(tiny_model_base / "1", base / "1")
    with serving_in_process([ModelConfig("mnist", base)], METRICS_PATH, poll_seconds=0.2) as url:
        yield url


class SteadyClient:
    """Predictions one after another on one keep-alive connection, while a test does its worst."""

    def __init__(self, url: str):
        self.url, self.answers, self.failures = url, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    response = session.post(
                        self.url + PREDICT, json={"instances": [IMAGE]}, timeout=STEADY_TIMEOUT
                    )
                    if response.status_code == 200:
                        self.answers += 1
                    else:
                        self.failures.append(response.text)
                except requests.RequestException as e:
                    self.failures.append(repr(e))

    def __enter__(self) -> "SteadyClient":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        assert self.answers and not self.failures, self.failures[:3]


def deep(depth: int) -> bytes:
    return ('{"instances":' + "[" * depth + "0" + "]" * depth + "}").encode()


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def test_100k_nested_brackets_are_refused_at_once_and_freeze_nobody(server):
    with SteadyClient(server):
        for _ in range(3):
            response = requests.post(server + PREDICT, data=deep(100_000), timeout=30)
            assert error_of(response) == (400, "tensor parsing error: image")


@pytest.mark.parametrize("depth", [256, 5_000])
def test_deeper_than_a_tensor_can_be_is_tf_servings_tensor_parsing_error(server, depth):
    response = requests.post(server + PREDICT, data=deep(depth), timeout=30)
    assert error_of(response) == (400, "tensor parsing error: image")
    # The signature it names decides the input's name, as TF Serving's lookup does.
    body = deep(depth).replace(b"{", b'{"signature_name": "nope", ', 1)
    response = requests.post(server + PREDICT, data=body, timeout=30)
    assert error_of(response) == (400, 'Serving signature name: "nope" not found in signature def')


def test_ranks_numpy_cannot_hold_get_a_400_not_a_500(server):
    response = requests.post(server + PREDICT, data=deep(100), timeout=30)
    assert response.status_code == 400
    assert "100 dimensions" in response.json()["error"]


def test_deep_brackets_inside_strings_are_only_text(server):
    body = {"instances": [IMAGE], "signature_name": SIGNATURE_NAME, "x": "[" * 10_000}
    assert requests.post(server + PREDICT, json=body, timeout=30).status_code == 200


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the server is in-process


def test_a_tiny_webp_of_a_huge_image_is_refused_before_it_is_decoded(server):
    body = {
        "signature_name": IMAGE_SIGNATURE_NAME,
        "instances": [{"b64": base64.b64encode(huge_webp()).decode()}],
    }
    before = peak_memory_mb()
    with SteadyClient(server):
        response = requests.post(server + PREDICT, json=body, timeout=60)
    assert response.status_code == 400
    assert f"more than {MAX_PIXELS:,} pixels" in response.json()["error"]
    assert peak_memory_mb() - before < 300  # decoded, it would take gigabytes


def test_the_app_refuses_huge_images_by_their_size(tmp_path):
    # A PNG of 30000 x 30000 and a WebP of 16383 x 16383: "too large", with figures.
    with pytest.raises(preprocess.ImageError) as refused:
        preprocess.read_image(png_of_size(30_000, 30_000), "page.png")
    assert str(refused.value) == (
        f"page.png is too large: 900,000,000 pixels, at most {MAX_PIXELS:,}"
    )
    with pytest.raises(preprocess.ImageError, match="too large: 268,402,689 pixels"):
        preprocess.read_image(huge_webp(), "x.webp")
    with pytest.raises(preprocess.ImageError, match="not an image that can be read"):
        preprocess.read_image(b"GIF89a but not really")


def test_unknown_model_names_do_not_grow_the_metrics(server):
    requests.post(server + PREDICT, json={"instances": [IMAGE]}, timeout=30)
    before = requests.get(server + METRICS_PATH, timeout=30).text
    with SteadyClient(server), requests.Session() as session:
        for _ in range(500):
            name = uuid.uuid4().hex * 64  # 2 KB names
            session.post(f"{server}/v1/models/{name}:predict", json={"instances": [IMAGE]})
    after = requests.get(server + METRICS_PATH, timeout=30).text
    assert name not in after and len(after) < len(before) + 2_000
    # They are counted, together, under no name.
    assert ':tensorflow:serving:request_count{model_name="",status="NOT_FOUND"} 500' in after
    assert 'model_name="mnist",status="OK"' in after


def test_numbers_too_big_for_a_double_are_tf_servings_parse_error(server):
    for body, offset in [(b'{"instances": [1e400]}', 15), (b'{"instances": [NaN, -1e309]}', 20)]:
        response = requests.post(server + PREDICT, data=body, timeout=30)
        expected = f"JSON Parse error: Number too big to be stored in double. at offset: {offset}"
        assert error_of(response) == (400, expected)


def test_nan_or_infinite_pixels_are_refused_by_the_model(server):
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = str({"instances": [IMAGE]}).replace("'", '"').replace("0.0", literal, 1)
        response = requests.post(server + PREDICT, data=body, timeout=30)
        assert response.status_code == 400
        assert "image pixels must be numbers from 0 to 1" in response.json()["error"]


def copy_version(source, base, version: int, corrupt: bool = False) -> None:
    """As export/ writes a version: a dot-folder filled, then renamed to its number."""
    tmp = base / f".export-{version}"
    if corrupt:
        tmp.mkdir(parents=True)
        (tmp / "saved_model.pb").write_bytes(b"garbage")
    else:
        shutil.copytree(source, tmp)
    tmp.rename(base / str(version))


def states(manager: Manager) -> dict[int, tuple[str, str]]:
    return {v: (s.state, s.error_code) for v, s in manager.status("mnist", None)}


def test_a_good_version_replacing_a_failed_one_of_the_same_number_loads(tiny_model_base, tmp_path):
    base = tmp_path / "mnist"
    copy_version(tiny_model_base / "1", base, 1)
    copy_version(None, base, 2, corrupt=True)
    manager = Manager([ModelConfig("mnist", base)], max_load_retries=0)
    try:
        manager.poll()
        assert states(manager) == {2: ("END", "DATA_LOSS"), 1: ("AVAILABLE", "OK")}
        manager.poll()  # the same failed folder is not tried again
        assert states(manager)[2] == ("END", "DATA_LOSS")
        shutil.rmtree(base / "2")
        copy_version(tiny_model_base / "1", base, 2)
        manager.poll()
        assert manager.acquire("mnist", None, None).version == 2
    finally:
        manager.stop()


def test_failed_versions_take_no_latest_n_place(tiny_model_base, tmp_path):
    # Versions 2 and 3 fail; with "latest 2", version 1 serves instead of nothing.
    base = tmp_path / "mnist"
    copy_version(tiny_model_base / "1", base, 1)
    copy_version(None, base, 2, corrupt=True)
    copy_version(None, base, 3, corrupt=True)
    manager = Manager([ModelConfig("mnist", base, num_versions=2)], max_load_retries=0)
    try:
        manager.poll()
        manager.poll()
        assert states(manager) == {
            3: ("END", "DATA_LOSS"),
            2: ("END", "DATA_LOSS"),
            1: ("AVAILABLE", "OK"),
        }
    finally:
        manager.stop()


def test_the_store_refuses_what_is_not_a_drawing(tmp_path):
    store = open_store(str(tmp_path / "feedback.sqlite"))
    digit = np.zeros((28, 28), np.float32)
    out = io.BytesIO()
    Image.new("RGB", (280, 280)).save(out, "PNG")
    good = out.getvalue()
    bad = [
        (dict(png=b"\x00" * 100), "not a PNG image"),
        (dict(png=good[:50]), "not a PNG image"),
        (dict(png=png_of_size(30_000, 30_000)), "too large"),
        (dict(digit_images=[np.full((28, 28), np.nan)]), "finite"),
        (dict(probabilities=[2.0] * 10), "10 numbers from 0 to 1"),
        (dict(probabilities=[0.1] * 3), "10 numbers from 0 to 1"),
        (dict(model_version=-1), "whole number"),
        (dict(prediction=7), "short text"),
    ]
    for change, message in bad:
        fields = dict(png=good, digit_images=[digit], label="7", source="canvas") | change
        with pytest.raises(StoreError, match=message):
            store.add(**fields)
    assert store.count() == 0
    assert store.add(good, [digit], "7", "canvas", "1", [[0.1] * 10], "mnist", 3) > 0
