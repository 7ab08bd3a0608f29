"""What the README promises: its two commands exist, and its curl example is a real digit."""

import json
import re
import subprocess

import numpy as np
import tensorflow as tf

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
