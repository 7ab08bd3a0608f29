"""What the README promises: its two commands exist, and its curl examples are a real digit."""

import io
import json
import os
import re
import subprocess

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

import settings

README = (settings.ROOT / "README.md").read_text()


def test_readme_has_exactly_the_two_setup_commands_and_ci_uses_the_test_one():
    assert re.search(r"^\s+make run\b", README, re.M)
    assert re.search(r"^\s+make test\b", README, re.M)
    targets = subprocess.run(["make", "-pn"], cwd=settings.ROOT, capture_output=True, text=True)
    assert re.search(r"^run:", targets.stdout, re.M) and re.search(r"^test:", targets.stdout, re.M)
    ci = (settings.ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_readme_curl_example_is_a_seven(sample_model_base):
    body = json.loads((settings.ROOT / "docs" / "digit-7.json").read_text())
    images = np.array(body["instances"], np.float32)
    assert images.shape == (1, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
    serve = tf.saved_model.load(str(sample_model_base / "1")).signatures["serving_default"]
    assert int(serve(image=tf.constant(images))["digit"][0]) == 7
    assert "docs/digit-7.json" in README


def test_readme_states_the_clients_not_sure_threshold():
    from client import results

    percent = re.findall(r'"Not sure" means the top probability is under (\d+)%', README)
    fraction = re.findall(r"below (0\.\d+) \(`client/results.py`\)", README)
    assert percent == [f"{results.NOT_SURE_BELOW * 100:.0f}"]
    assert fraction == [f"{results.NOT_SURE_BELOW:g}"]


def seven_on_paper() -> np.ndarray:
    """docs/digit-7.json's 7 as a scan would have it: 280x280, black ink on white paper."""
    body = json.loads((settings.ROOT / "docs" / "digit-7.json").read_text())
    seven = np.array(body["instances"][0], np.float32)[..., 0]
    big = cv2.resize(seven, (280, 280), interpolation=cv2.INTER_LINEAR)
    return np.round(255 * (1 - np.clip(big, 0, 1))).astype(np.uint8)


def test_the_png_example_is_the_json_seven_and_predict_image_reads_it(sample_model_base):
    data = (settings.ROOT / "docs" / "digit-7.png").read_bytes()
    # UPDATE_DOCS=1 writes it anew; it is made from the JSON example, nothing else.
    if os.environ.get("UPDATE_DOCS") == "1":
        out = io.BytesIO()
        Image.fromarray(seven_on_paper()).save(out, "PNG", optimize=True)
        data = out.getvalue()
        (settings.ROOT / "docs" / "digit-7.png").write_bytes(data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), seven_on_paper())
    signature = tf.saved_model.load(str(sample_model_base / "1")).signatures["predict_image"]
    assert int(signature(image_bytes=tf.constant([data]))["digit"][0]) == 7
