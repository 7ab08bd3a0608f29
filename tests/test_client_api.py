"""client/api.py against the local server (a subprocess on a free port) and against broken ones."""

import base64
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
import requests
from conftest import free_port, start_server, stop_server

import settings
from client import api, preprocess, results


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client_api")
    base = tmp / settings.MODEL_NAME
    shutil.copytree(tiny_model_base, base)
    process, url = start_server(base, tmp, labels={"stable": 1})
    yield url
    stop_server(process)


@pytest.fixture
def digits() -> list[bytes]:
    """Three digits' crops as the client sends them: PNGs of white strokes on black."""
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(3):
        crop = np.zeros((120, 90), np.uint8)
        points = rng.integers(5, 85, (4, 2)).astype(np.int32)
        cv2.polylines(crop, [points], False, 255, 12)
        crops.append(preprocess.encode_png(crop))
    return crops


def test_versions_and_their_states(server):
    versions = api.get_versions(server, settings.MODEL_NAME)
    assert [(v.version, v.state, v.error) for v in versions] == [(1, "AVAILABLE", "")]


def test_labels_are_found_by_probing_metadata(server):
    assert api.get_labels(server, settings.MODEL_NAME) == {"stable": 1}
    assert api.get_labels(server, settings.MODEL_NAME, labels=("canary",)) == {}


@pytest.mark.parametrize(
    "target,source",
    [("latest", "newest loaded"), ("1", "by number"), ("stable", "label stable")],
)
def test_predict_answers_from_the_path_asked(server, digits, target, source):
    answer = api.predict(server, settings.MODEL_NAME, digits, target)
    answer = api.answered_by(answer, server, settings.MODEL_NAME, target)
    assert answer.probabilities.shape == (3, 10)
    assert np.allclose(answer.probabilities.sum(axis=1), 1, atol=1e-3)
    assert answer.images.shape == (3, 28, 28) and answer.images.max() == pytest.approx(1)
    assert answer.is_digit.shape == (3,) and answer.is_digit.dtype == bool
    assert answer.version == 1
    assert source in answer.version_source


@pytest.mark.parametrize("target", ["latest", "stable"])
def test_answer_first_then_the_version_that_gave_it(server, digits, target):
    answer = api.predict(server, settings.MODEL_NAME, digits, target)
    assert answer.version is None
    assert answer.version_source == api.VERSION_NOT_ASKED
    named = api.answered_by(answer, server, settings.MODEL_NAME, target)
    assert named.version == 1
    assert named.version_source != api.VERSION_NOT_ASKED
    assert np.array_equal(named.probabilities, answer.probabilities)


def test_predict_agrees_with_the_raw_rest_call(server, digits):
    # The curl way: the image signature by name, each image as {"b64": ...}.
    body = {
        "signature_name": settings.IMAGE_SIGNATURE_NAME,
        "instances": [{"b64": base64.b64encode(d).decode()} for d in digits],
    }
    url = f"{server}/v1/models/{settings.MODEL_NAME}:predict"
    raw = requests.post(url, json=body, timeout=30).json()
    answer = api.predict(server, settings.MODEL_NAME, digits)
    expected = np.array([row["probabilities"] for row in raw["predictions"]], np.float32)
    np.testing.assert_array_equal(answer.probabilities, expected)
    seen = np.array([row["mnist_image"] for row in raw["predictions"]], np.float32)[..., 0]
    np.testing.assert_array_equal(answer.images, seen)
    # Every version exported now says whether each image is a digit, and how digit-like it is.
    assert answer.is_digit.tolist() == [row["is_digit"] for row in raw["predictions"]]
    scores = np.array([row["digit_score"] for row in raw["predictions"]], np.float32)
    np.testing.assert_array_equal(answer.digit_scores, scores)


def test_a_version_without_the_image_signature_says_how_to_get_it(fake):
    # TF Serving's answer for a version exported before predict_image (the browser test gets it
    # from the local server serving such a version).
    error = {"error": 'Serving signature name: "predict_image" not found in signature def'}
    fake.reply = (400, json.dumps(error).encode())
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    for target, names in [("2", "Version 2"), ("latest", "The version latest points to")]:
        with pytest.raises(api.ServingError) as e:
            api.predict(url, settings.MODEL_NAME, [b"a png"], target)
        assert e.value.kind == "rejected"
        assert e.value.message.startswith(f"{names} has no predict_image signature")
        assert "python -m train" in e.value.message


def test_unknown_version_shows_tf_servings_text(server, digits):
    with pytest.raises(api.ServingError) as e:
        api.predict(server, settings.MODEL_NAME, digits, "7")
    assert e.value.kind == "not_found"
    assert "Servable not found for request: Specific(mnist, 7)" in e.value.message


def test_unknown_label_shows_tf_servings_text(server, digits):
    with pytest.raises(api.ServingError) as e:
        api.predict(server, settings.MODEL_NAME, digits, "nightly")
    assert "Unrecognized servable version label: nightly" in e.value.message


def test_unknown_model(server):
    with pytest.raises(api.ServingError) as e:
        api.get_versions(server, "nope")
    assert e.value.kind == "not_found"
    assert "Could not find any versions of model nope" in e.value.message


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(api.ServingError) as e:
        api.get_versions(url, settings.MODEL_NAME)
    assert e.value.kind == "unreachable"
    assert url in e.value.message and "Cannot reach" in e.value.message


def test_not_a_url():
    with pytest.raises(api.ServingError) as e:
        api.get_versions("localhost-no-scheme", settings.MODEL_NAME)
    assert e.value.kind == "unreachable"


def test_silent_server_times_out():
    # A socket that listens but never answers: the kernel accepts, nobody replies.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(api.ServingError) as e:
            api.get_versions(url, settings.MODEL_NAME, timeout=0.5)
    assert e.value.kind == "timeout"
    assert url in e.value.message


def test_a_kept_open_connection_closed_by_the_server_is_replaced():
    """The server answers one request a connection and closes it when the next one arrives,
    without a word (as when its idle timeout strikes just as the client reuses it)."""
    status = json.dumps({"model_version_status": [{"version": "1", "state": "AVAILABLE"}]})
    answer = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(status)}\r\n\r\n{status}"
    ).encode()
    connections = []

    def serve(listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(conn)
            conn.recv(65536)
            conn.sendall(answer)
            conn.recv(65536)  # the next request on this connection: no answer, just close
            conn.close()

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        for _ in range(3):
            assert [v.version for v in api.get_versions(url, "mnist")] == [1]
    assert len(connections) >= 2  # the client did reuse a connection, and replaced it


class _Fake(http.server.BaseHTTPRequestHandler):
    """Answers every request with the (status, body) the test set on the server."""

    def _answer(self):
        status, body = self.server.reply
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b'{"predictions": [[0.5, 0.5]]}',
        b'{"predictions": [{"probabilities": [0.1, 0.9]}]}',
        b'{"outputs": []}',
        b'{"predictions": [{"probabilities": [NaN, 0, 0, 0, 0, 0, 0, 0, 0, 1]}]}',
        b'{"predictions": [{"probabilities": ["a", 0, 0, 0, 0, 0, 0, 0, 0, 1]}]}',
        b"[1, 2, 3]",
        # The 10 probabilities but no image, or not a 28x28 one in 0..1:
        b'{"predictions": [{"probabilities": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]}]}',
        b'{"predictions": [{"probabilities": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "mnist_image": [1]}]}',
        b'{"predictions": [{"probabilities": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], "mnist_image": '
        + json.dumps([[2.0] * 28] * 28).encode()
        + b"}]}",
    ],
)
def test_malformed_answers(fake, body):
    fake.reply = (200, body)
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with pytest.raises(api.ServingError) as e:
        api.predict(url, "mnist", [b"a png"], "1")
    assert e.value.kind == "malformed"


def answer_row(**outputs) -> dict:
    """One row of a well-formed predict_image answer, with `outputs` added or replaced."""
    row = {"probabilities": [0.0] * 9 + [1.0], "digit": 9, "mnist_image": [[[0.0]] * 28] * 28}
    return {**row, **outputs}


def test_an_answer_without_the_not_a_digit_outputs_takes_every_image_for_a_digit(fake):
    # As versions exported before them answer.
    fake.reply = (200, json.dumps({"predictions": [answer_row(), answer_row()]}).encode())
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    answer = api.predict(url, "mnist", [b"a png", b"another"], "1")
    assert answer.is_digit.tolist() == [True, True] and answer.is_digit.dtype == bool
    assert answer.digit_scores is None


def test_an_answer_with_the_not_a_digit_outputs_keeps_them(fake):
    rows = [answer_row(is_digit=False, digit_score=0.12), answer_row(is_digit=True, digit_score=1)]
    fake.reply = (200, json.dumps({"predictions": rows}).encode())
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    answer = api.predict(url, "mnist", [b"a png", b"another"], "1")
    assert answer.is_digit.tolist() == [False, True]
    assert answer.digit_scores.dtype == np.float32
    assert answer.digit_scores.tolist() == pytest.approx([0.12, 1.0])


@pytest.mark.parametrize(
    "rows",
    [
        [answer_row(is_digit="false")],
        [answer_row(is_digit=0)],
        [answer_row(is_digit=None)],
        [answer_row(digit_score=1.5)],
        [answer_row(digit_score=-0.1)],
        [answer_row(digit_score="0.5")],
        [answer_row(digit_score=True)],
        [answer_row(digit_score=[0.5])],
        # In one row and not the other: not an answer of one version.
        [answer_row(is_digit=True), answer_row()],
        [answer_row(), answer_row(digit_score=0.5)],
    ],
)
def test_malformed_not_a_digit_outputs(fake, rows):
    body = json.dumps({"predictions": rows}).encode()
    fake.reply = (200, body)
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with pytest.raises(api.ServingError) as e:
        api.predict(url, "mnist", [b"a png"] * len(rows), "1")
    assert e.value.kind == "malformed"
    assert "is not what TF Serving sends" in e.value.message


def test_a_score_that_is_not_a_number_is_malformed(fake):
    row = json.dumps(answer_row(is_digit=True)).encode()
    fake.reply = (200, b'{"predictions": [' + row[:-1] + b', "digit_score": NaN}]}')
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with pytest.raises(api.ServingError) as e:
        api.predict(url, "mnist", [b"a png"], "1")
    assert e.value.kind == "malformed"


def test_malformed_status(fake):
    fake.reply = (200, json.dumps({"model_version_status": [{"state": "AVAILABLE"}]}).encode())
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with pytest.raises(api.ServingError) as e:
        api.get_versions(url, "mnist")
    assert e.value.kind == "malformed"


def test_server_error_without_json(fake):
    fake.reply = (502, b"Bad Gateway")
    url = f"http://127.0.0.1:{fake.server_address[1]}"
    with pytest.raises(api.ServingError) as e:
        api.get_versions(url, "mnist")
    assert "502" in e.value.message and "Bad Gateway" in e.value.message


def test_paths():
    assert api.model_path("http://h:1/", "mnist") == "http://h:1/v1/models/mnist"
    assert api.model_path("http://h:1", "mnist", "3") == "http://h:1/v1/models/mnist/versions/3"
    assert (
        api.model_path("http://h:1", "mnist", "stable")
        == "http://h:1/v1/models/mnist/labels/stable"
    )


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("TF_SERVING_URL", raising=False)
    monkeypatch.delenv("MODEL_NAME", raising=False)
    assert api.default_url() == settings.DEFAULT_SERVING_URL
    assert api.default_model() == settings.MODEL_NAME
    monkeypatch.setenv("TF_SERVING_URL", "http://serving:8501")
    monkeypatch.setenv("MODEL_NAME", "other")
    assert api.default_url() == "http://serving:8501"
    assert api.default_model() == "other"


def test_reading_results():
    probabilities = np.array(
        [[0.0] * 7 + [0.95, 0.03, 0.02], [0.5, 0.45] + [0.005] * 8], dtype=np.float32
    )
    top = results.top_k(probabilities[0])
    assert [d for d, _ in top] == [7, 8, 9]
    assert [p for _, p in top] == pytest.approx([0.95, 0.03, 0.02])
    reading = results.read(probabilities)  # a version that does not say what is a digit
    assert (reading.number, reading.guesses, reading.accepted) == ("70", [7, 0], [True, True])
    assert reading.confidences == pytest.approx([0.95, 0.5])
    assert not reading.sure and reading.least_sure == pytest.approx(0.5)
    assert results.headline(reading) == "Prediction: 70"
    assert [results.detail(reading, i) for i in range(2)] == ["95%", "50%"]
    assert results.read(probabilities[:1]).sure
    # The model found no digit in the second image (digit -1, probabilities all 0).
    empty = results.read(probabilities * [[1], [0]])
    assert empty.number == f"7{settings.NOT_A_DIGIT_MARK}" and empty.sure
    assert results.detail(empty, 1) == "no ink found" and results.best_guess(empty, 1) is None


def test_a_piece_that_is_no_digit_is_marked_with_its_best_guess():
    probabilities = np.array(
        [[0.0] * 4 + [0.97] + [0.03] + [0.0] * 4, [0.0] * 3 + [0.6, 0.4] + [0.0] * 5],
        dtype=np.float32,
    )
    mark = settings.NOT_A_DIGIT_MARK
    # One piece, rejected: the message instead of the digit, the guess beside it.
    alone = results.read(probabilities[:1], np.array([False]))
    assert alone.no_digit and alone.number == mark
    assert (
        results.headline(alone) == results.NOT_A_DIGIT_MESSAGE == "That doesn't look like a digit"
    )
    assert results.best_guess(alone, 0) == "best guess: 4, 97%"
    assert alone.sure  # "not sure" is for digits: a rejected piece has its own message
    # In a number: the mark where the rejected piece is; "not sure" from the accepted digits.
    number = results.read(probabilities, np.array([False, True]))
    assert not number.no_digit and number.number == f"{mark}3"
    assert results.headline(number) == f"Prediction: {mark}3"
    assert [results.detail(number, i) for i in range(2)] == ["best guess: 4, 97%", "60%"]
    assert results.best_guess(number, 1) is None
    assert not number.sure and number.least_sure == pytest.approx(0.6)
    assert results.classes(probabilities, np.array([False, True])).tolist() == [
        settings.NOT_A_DIGIT,
        3,
    ]
    assert results.classes(probabilities).tolist() == [4, 3]  # an older version: all digits


def test_client_never_imports_tensorflow():
    modules = "client.api, client.preprocess, client.results"
    code = f"import sys, {modules}; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=settings.ROOT
    )
    assert out.stdout.strip() == "False", out.stderr
