"""Classify, regress and string inputs on a TF2 SavedModel, as Keras and tf.Module export them.

TF Serving's own test model (tests/test_serving_tfserving.py) is a TF1 graph; this one is made
here with tf.saved_model.save(): a classify signature (serialized tf.Examples in, `classes` and
`scores` out), a regress signature, and one with a string input and a `_bytes` output. Served by
the package's RestServer and Manager on a loopback port, with batching on: example vectors from
concurrent requests may share a model call, and each request must get its own results back.
"""

import base64
import threading

import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import serving_in_process

from serving.config import BatchingParameters, ModelConfig
from settings import SIGNATURE_NAME


class Model(tf.Module):
    """score(high) = 0.5 x; regress: 0.5 x + 2; echo: each string and its length."""

    def __init__(self):
        super().__init__()
        self.a = tf.Variable(0.5)

    def _x(self, serialized):
        return tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        high = self.a * self._x(inputs)
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(high)[0], 1])
        return {"classes": classes, "scores": tf.concat([1 - high, high], axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def regress(self, inputs):
        return {"outputs": self.a * self._x(inputs) + 2}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def echo(self, text):
        return {"length": tf.strings.length(text), "text_bytes": text}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    base = tmp_path_factory.mktemp("signatures") / "m"
    model = Model()
    signatures = {SIGNATURE_NAME: model.classify, "regress": model.regress, "echo": model.echo}
    tf.saved_model.save(model, str(base / "1"), signatures=signatures)
    batching = BatchingParameters(max_batch_size=8, batch_timeout_micros=5000)
    with serving_in_process([ModelConfig("m", base)], batching=batching) as url:
        yield url


def post(url: str, path: str, body: dict) -> tuple[int, dict]:
    response = requests.post(url + path, json=body, timeout=30)
    return response.status_code, response.json()


def test_classify_a_tf2_signature_with_classes_and_scores(url):
    body = {"context": {"x": 1.0}, "examples": [{"x": 0.5}, {"y": "no x here"}]}
    assert post(url, "/v1/models/m:classify", body) == (
        200,
        {"results": [[["low", 0.75], ["high", 0.25]], [["low", 0.5], ["high", 0.5]]]},
    )


def test_regress_a_tf2_signature(url):
    body = {"signature_name": "regress", "examples": [{"x": 2.0}, {"x": [-4]}]}
    status, answer = post(url, "/v1/models/m/versions/1:regress", body)
    # [-4] is an int64 feature where the model parses floats: TensorFlow's own message, 400.
    assert status == 400
    assert "Data types don't match" in answer["error"]
    body["examples"][1] = {"x": [-4.0]}
    assert post(url, "/v1/models/m/versions/1:regress", body) == (200, {"results": [3.0, 0.0]})


def test_string_inputs_reach_the_signature_and_bytes_come_back_as_b64(url):
    raw = b"\x00\xff binary"
    body = {
        "signature_name": "echo",
        "instances": [{"b64": base64.b64encode(raw).decode()}, "text"],
    }
    assert post(url, "/v1/models/m:predict", body) == (
        200,
        {
            "predictions": [
                {"length": len(raw), "text_bytes": {"b64": base64.b64encode(raw).decode()}},
                {"length": 4, "text_bytes": {"b64": base64.b64encode(b"text").decode()}},
            ]
        },
    )


def test_concurrent_classify_requests_each_get_their_own_results(url):
    answers = {}
    start = threading.Barrier(8)

    def client(i: int) -> None:
        start.wait()
        answers[i] = post(url, "/v1/models/m:classify", {"examples": [{"x": i / 8}] * (1 + i % 3)})

    clients = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=60)
    for i in range(8):
        status, body = answers[i]
        high = np.float32(0.5) * np.float32(i / 8)
        expected = [["low", float(np.float32(1) - high)], ["high", float(high)]]
        assert status == 200 and body == {"results": [expected] * (1 + i % 3)}
