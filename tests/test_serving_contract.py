"""TF Serving's REST contract (docs/rest-api.md): every endpoint and error, full bodies.

A real server (the package's RestServer and Manager) on a loopback port, serving a copy of the
`tiny_model_base` fixture; responses are compared with what TF Serving answers.
"""

import http.client
import json
import shutil
import socket
import threading
from dataclasses import replace

import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import serving_in_process

from serving.config import ModelConfig
from serving.status import ServingError
from serving.versions import load_servable
from settings import SIGNATURE_NAME

METRICS_PATH = "/monitoring/prometheus/metrics"
MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory):
    base = tmp_path_factory.mktemp("contract") / "mnist"
    shutil.copytree(tiny_model_base / "1", base / "1")
    config = ModelConfig("mnist", base, labels={"stable": 1})
    with serving_in_process(
        [config], METRICS_PATH, MAX_BODY, poll_seconds=0.2, allow_labels_for_unavailable=True
    ) as url:
        yield url, base


@pytest.fixture(scope="module")
def url(server):
    return server[0]


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.random((3, 28, 28, 1), dtype=np.float32)


def post(url, path, body):
    data = body if isinstance(body, (bytes, str)) else None
    return requests.post(url + path, data=data, json=None if data is not None else body, timeout=30)


def expect_error(response, status: int, message: str) -> None:
    assert response.headers["Content-Type"] == "application/json"
    assert (response.status_code, response.json()) == (status, {"error": message})


# ------------------------------------------------------------------ model status and metadata

AVAILABLE_1 = {
    "model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


@pytest.mark.parametrize(
    "path", ["/v1/models/mnist", "/v1/models/mnist/versions/1", "/v1/models/mnist/labels/stable"]
)
def test_model_status(url, path):
    response = requests.get(url + path, timeout=30)
    assert response.headers["Content-Type"] == "application/json"
    assert (response.status_code, response.json()) == (200, AVAILABLE_1)


def test_model_metadata(url):
    response = requests.get(url + "/v1/models/mnist/metadata", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"][SIGNATURE_NAME]
    assert signature["method_name"] == "tensorflow/serving/predict"
    image = signature["inputs"]["image"]
    assert image["dtype"] == "DT_FLOAT"
    assert image["tensor_shape"] == {
        "dim": [{"size": s, "name": ""} for s in ("-1", "28", "28", "1")],
        "unknown_rank": False,
    }
    outputs = signature["outputs"]
    assert (outputs["probabilities"]["dtype"], outputs["digit"]["dtype"]) == (
        "DT_FLOAT",
        "DT_INT64",
    )
    same = requests.get(url + "/v1/models/mnist/labels/stable/metadata", timeout=30).json()
    assert same == body


@pytest.mark.parametrize(
    "path, status, message",
    [
        ("/v1/models", 400, "Missing model name in request."),
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("/v1/models/mnist/versions/7", 404, "Could not find version 7 of model mnist"),
        ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        ("/v1/models/mnist/labels/nope/metadata", 400, "Unrecognized servable version label: nope"),
        (
            "/v1/models/mnist/versions/abc",
            400,
            "Malformed request: GET /v1/models/mnist/versions/abc",
        ),
        ("/v1/models/mnist/version/5", 400, "Malformed request: GET /v1/models/mnist/version/5"),
        ("/v1/models/mnist:predict", 400, "Malformed request: GET /v1/models/mnist:predict"),
        (
            "/v1/models/mnist/versions/99999999999999999999",
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
    ],
)
def test_status_errors(url, path, status, message):
    expect_error(requests.get(url + path, timeout=30), status, message)


# ------------------------------------------------------------------ predict


def in_process(base, images):
    signature = tf.saved_model.load(str(base / "1")).signatures[SIGNATURE_NAME]
    return {k: v.numpy() for k, v in signature(image=tf.constant(images)).items()}


def test_predict_row_format_matches_the_model_called_in_process(server, images):
    url, base = server
    response = post(url, "/v1/models/mnist:predict", {"instances": images.tolist()})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    expected = in_process(base, images)
    predictions = response.json()["predictions"]
    keys = ["digit", "digit_score", "is_digit", "probabilities"]
    assert [sorted(p) for p in predictions] == [keys] * 3
    assert [p["digit"] for p in predictions] == expected["digit"].tolist()
    # A bool output is JSON true/false, as TF Serving writes it.
    assert [p["is_digit"] for p in predictions] == expected["is_digit"].tolist()
    assert all(type(p["is_digit"]) is bool for p in predictions)
    scores = np.array([p["digit_score"] for p in predictions], np.float32)
    np.testing.assert_array_equal(scores, expected["digit_score"])
    # Floats are written with enough digits to read back as the very same float32.
    probabilities = np.array([p["probabilities"] for p in predictions], np.float32)
    np.testing.assert_array_equal(probabilities, expected["probabilities"])


def test_the_graph_is_called_directly_and_answers_as_the_signature_does(server, images):
    # The server calls the signature's graph without a signature call's Python argument handling
    # (serving/versions.py graph_call); the test above holds its answers over HTTP to the
    # signature's own. Here: that path is the one taken, and what it does not take is refused
    # with the signature's own message.
    servable = load_servable("mnist", 1, server[1] / "1", batching=None)
    signature = servable.signatures[SIGNATURE_NAME]
    assert signature.graph_call is not None
    taken = []
    graph = signature.graph_call
    signature.graph_call = lambda tensor: taken.append(tensor.shape) or graph(tensor)
    direct = signature.call({"image": images})
    assert taken == [(3, 28, 28, 1)]
    through_signature = replace(signature, graph_call=None).call({"image": images})
    for name in ("digit", "probabilities", "is_digit", "digit_score"):
        np.testing.assert_array_equal(direct[name], through_signature[name])

    doubles = {"image": images.astype(np.float64)}
    with pytest.raises(ServingError) as direct_error:
        signature.call(doubles)
    with pytest.raises(ServingError) as signature_error:
        replace(signature, graph_call=None).call(doubles)
    assert taken == [(3, 28, 28, 1)]
    assert direct_error.value.message == signature_error.value.message
    assert "float64" in direct_error.value.message or "double" in direct_error.value.message


def test_predict_columnar_format_and_named_instances(server, images):
    url, base = server
    expected = in_process(base, images[:2])
    columnar = post(url, "/v1/models/mnist/versions/1:predict", {"inputs": images[:2].tolist()})
    outputs = columnar.json()["outputs"]
    assert sorted(outputs) == ["digit", "digit_score", "is_digit", "probabilities"]
    assert outputs["digit"] == expected["digit"].tolist()
    assert outputs["is_digit"] == expected["is_digit"].tolist()
    probabilities = np.array(outputs["probabilities"], np.float32)
    np.testing.assert_array_equal(probabilities, expected["probabilities"])
    named = post(
        url,
        "/v1/models/mnist/labels/stable:predict",
        {"signature_name": SIGNATURE_NAME, "instances": [{"image": images[0].tolist()}]},
    )
    assert named.json()["predictions"][0]["digit"] == int(expected["digit"][0])


def test_predict_parses_nan_and_infinity_literals_and_the_model_refuses_them(url):
    # rapidjson's kParseNanAndInfFlag: the literals parse; the exported model checks its input.
    image = [[[0.0]] * 28 for _ in range(28)]
    body = str({"instances": [image]}).replace("'", '"').replace("0.0", "NaN", 1)
    response = post(url, "/v1/models/mnist:predict", body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("image pixels must be numbers from 0 to 1")


EMPTY_IMAGE = [[[0.0]] * 28] * 28


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/v1/models/mnist:predict", b"", 400, "JSON Parse error: The document is empty"),
        (
            "/v1/models/mnist:predict",
            b"{oops",
            400,
            "JSON Parse error: Missing a name for object member. at offset: 1",
        ),
        ("/v1/models/mnist:predict", b"[1]", 400, "JSON Value: [\n    1\n] Is not object"),
        (
            "/v1/models/mnist:predict",
            b'{"signature_name": 1, "instances": [1]}',
            400,
            'JSON Value: {\n    "signature_name": 1,\n    "instances": [\n        1\n    ]\n} '
            "not formatted correctly. 'signature_name' key must be a string value.",
        ),
        (
            "/v1/models/mnist:predict",
            b'{"instances": [1], "inputs": [1]}',
            400,
            'JSON Value: {\n    "instances": [\n        1\n    ],\n'
            '    "inputs": [\n        1\n    ]\n} '
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (
            "/v1/models/mnist:predict",
            b'{"instances": []}',
            400,
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        (
            "/v1/models/mnist:predict",
            b'{"images": [1]}',
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        (
            "/v1/models/mnist:predict",
            b'{"instances": ["x"]}',
            400,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            'JSON Value: "x" Type: String is not of expected type: float',
        ),
        (
            "/v1/models/mnist:predict",
            b'{"instances": [[[0.0]]]}',
            400,
            "Shapes (1, 1, 1) and (None, 28, 28, 1) are incompatible",
        ),
        (
            "/v1/models/mnist:predict",
            b'{"signature_name": "nope", "instances": [1]}',
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "/v1/models/nope:predict",
            b'{"instances": [1]}',
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "/v1/models/mnist/versions/9:predict",
            b'{"instances": [1]}',
            404,
            "Servable not found for request: Specific(mnist, 9)",
        ),
        (
            "/v1/models/mnist/labels/nope:predict",
            b'{"instances": [1]}',
            400,
            "Unrecognized servable version label: nope",
        ),
        (
            "/v1/models/..%2F..%2Fetc:predict",
            b'{"instances": [1]}',
            404,
            "Servable not found for request: Latest(../../etc)",
        ),
        (
            "/v1/models/mnist/metadata",
            b"{}",
            400,
            "Malformed request: POST /v1/models/mnist/metadata",
        ),
        (
            "/v1/models/mnist:regress",
            b'{"examples": [{"x": 1.0}]}',
            400,
            "Expected one output Tensor.",
        ),
        (
            "/v1/models/mnist:classify",
            b'{"instances": [1]}',
            400,
            'JSON Value: {\n    "instances": [\n        1\n    ]\n} '
            "When method is classify, key 'examples' is expected and was not found",
        ),
    ],
)
def test_predict_errors(url, path, body, status, message):
    expect_error(post(url, path, body), status, message)


def test_classify_on_a_predict_only_model(url):
    response = post(url, "/v1/models/mnist:classify", {"examples": [{"x": 1.0}]})
    assert response.status_code == 400
    # classifier.cc PreProcessClassification() counts the outputs before it looks for the
    # classification inputs: serving_default has four (probabilities, digit, is_digit,
    # digit_score).
    assert response.json()["error"] == "Expected one or two output Tensors, found 4"


def test_a_lone_request_runs_on_the_loop_and_concurrent_ones_on_workers(url, images, monkeypatch):
    import time

    import serving.rest

    threads = []
    original = serving.rest._call

    def recording_call(signature, arrays, done):
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            time.sleep(0.3)  # the others arrive meanwhile and find this one still busy
        original(signature, arrays, done)

    monkeypatch.setattr(serving.rest, "_call", recording_call)
    body = {"instances": images[:1].tolist()}
    with requests.Session() as session:
        for _ in range(3):
            assert session.post(url + "/v1/models/mnist:predict", json=body, timeout=30).ok
    assert len(threads) == 3 and not any(name.startswith("model") for name in threads)

    threads.clear()
    start = threading.Barrier(8)
    answers = []

    def client():
        start.wait()
        answers.append(requests.post(url + "/v1/models/mnist:predict", json=body, timeout=30))

    clients = [threading.Thread(target=client) for _ in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert all(len(a.json()["predictions"]) == 1 for a in answers)
    assert any(name.startswith("model") for name in threads)  # not one at a time on the loop


# ------------------------------------------------------------------ HTTP level


def raw(url, method, path, body=b"", connection=None):
    host, port = url.removeprefix("http://").split(":")
    conn = connection or http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def test_unknown_paths_get_tf_servings_404_page_and_dot_segments_stay_malformed(url):
    status, content_type, body = raw(url, "GET", "/index.html")
    assert (status, content_type) == (404, "text/html; charset=ISO-8859-1")
    assert b"<H1>Not Found</H1>" in body
    status, _, body = raw(url, "POST", "/v1/models/../../etc/passwd:predict", b"{}")
    assert status == 400
    assert (
        body.decode()
        == '{\n    "error": "Malformed request: POST /v1/models/../../etc/passwd:predict"\n}'
    )


def test_other_methods_are_malformed_requests(url):
    status, _, body = raw(url, "PUT", "/v1/models/mnist", b"{}")
    assert (status, body) == (400, b'{\n    "error": "Malformed request: PUT /v1/models/mnist"\n}')


def test_a_body_over_the_limit_is_refused(url):
    response = post(url, "/v1/models/mnist:predict", b" " * (MAX_BODY + 1))
    expect_error(
        response,
        413,
        f"Request body of {MAX_BODY + 1} bytes is larger than the limit of {MAX_BODY} bytes",
    )


def test_one_keep_alive_connection_serves_errors_and_answers(url, images):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"instances": images[:1].tolist()}).encode()
    for payload, status in [(body, 200), (b"{bad", 400), (b"", 400), (body, 200)]:
        assert raw(url, "POST", "/v1/models/mnist:predict", payload, conn)[0] == status
    conn.close()


def test_prometheus_metrics(url):
    post(url, "/v1/models/mnist:predict", b"")
    response = requests.get(url + METRICS_PATH, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/plain"
    assert ':tensorflow:serving:request_count{model_name="mnist",status="OK"}' in response.text
    assert (
        ':tensorflow:serving:request_count{model_name="mnist",status="INVALID_ARGUMENT"}'
        in response.text
    )
    assert (
        ':tensorflow:serving:request_latency_count{model_name="mnist",API="predict"'
        in response.text
    )


def test_chunked_bodies_are_read_and_bad_chunks_refused(url, images):
    body = json.dumps({"instances": images[:1].tolist()}).encode()
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = iter([body[:100], body[100:]])
    conn.request("POST", "/v1/models/mnist:predict", chunks, encode_chunked=True)
    assert conn.getresponse().status == 200
    with socket.create_connection((host, int(port)), timeout=30) as raw_socket:
        raw_socket.sendall(
            b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        assert raw_socket.recv(65536).startswith(b"HTTP/1.1 400 ")


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, bytes]:
    """(head, body) of the next response on a raw socket."""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    buffer[:] = rest[length:]
    return head, rest[:length]


def test_pipelined_requests_are_answered_in_order(url, images):
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"instances": images[:1].tolist()}).encode()
    predict = (
        b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    status = b"GET /v1/models/mnist HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(predict + status + predict)
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(3)]
    assert [head.split(b"\r\n")[0] for head, _ in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert b"predictions" in answers[0][1] and answers[0][1] == answers[2][1]
    assert json.loads(answers[1][1]) == AVAILABLE_1


def test_expect_100_continue_and_a_slow_body_that_does_not_hold_up_others(url, images):
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"instances": images[:1].tolist()}).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body[:1000])
        # Meanwhile another client is served.
        assert requests.get(url + "/v1/models/mnist", timeout=30).json() == AVAILABLE_1
        sock.sendall(body[1000:])
        head, answer = read_response(sock, bytearray())
    assert head.startswith(b"HTTP/1.1 200 OK") and b"predictions" in answer


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET /v1/models/mnist HTTP/2.0\r\n\r\n", b"400"),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET /v1/models/mnist HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", b"431"),
    ],
)
def test_malformed_http_gets_an_error_page_and_the_connection_closes(url, request_bytes, status):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):  # read until the server closes
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    assert b"Connection: close" in answer
