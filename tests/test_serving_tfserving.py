"""TF Serving's own REST tests, run against `python -m serving` on TF Serving's own test model.

The seven REST cases of tensorflow/serving's tensorflow_serving/model_servers/
tensorflow_model_server_test.py, with their requests and expected answers as upstream has them,
on saved_model_half_plus_two_cpu (tests/data/half_plus_two/, Apache-2.0: a TF1 SavedModel whose
version folder is `00000123`), served under the name `default` as upstream serves it. Then more
of what TF Serving does with that model: classify and regress with a context and several
examples, their errors, and predict on a TF1 graph fed as given.
"""

import json
import signal
import sys
import urllib.request
from pathlib import Path

import pytest
import requests
from conftest import free_port, start_until, stop_server

DATA = Path(__file__).parent / "data" / "half_plus_two"
MODEL_PATH = DATA / "saved_model_half_plus_two_cpu"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """RunServer('default', model_path, monitoring_config_file=...): one server for the module
    (upstream starts one per set of flags; the monitoring config changes no other answer)."""
    port = free_port()
    log = tmp_path_factory.mktemp("tfserving") / "server.log"
    command = [sys.executable, "-m", "serving", "--model_name", "default"]
    command += ["--model_base_path", str(MODEL_PATH), "--rest_api_port", str(port), "--port", "0"]
    command += ["--monitoring_config_file", str(DATA / "monitoring_config.txt")]
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        return requests.get(url + "/v1/models/default", timeout=5).ok

    process = start_until(command, log, ready, "the server", 180)
    try:
        yield url, log
    finally:
        stop_server(process, signal.SIGINT, 30)


def call_rest(url: str, req: dict | None) -> bytes:
    """tensorflow_model_server_test_base.CallREST(): POST the JSON, or GET without a body."""
    data = json.dumps(req).encode("utf-8") if req is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as resp:
        return resp.read()


def sorted_object(obj):
    """tensorflow_model_server_test_base.SortedObject()."""
    if isinstance(obj, dict):
        return sorted((k, sorted_object(v)) for k, v in obj.items())
    if isinstance(obj, list):
        return sorted(sorted_object(x) for x in obj)
    if isinstance(obj, tuple):
        return list(sorted(sorted_object(x) for x in obj))
    return obj


# ------------------------------------------------------------------ the seven upstream cases


def test_classify_rest(server):
    """testClassifyREST"""
    url = f"{server[0]}/v1/models/default:classify"
    json_req = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"results": [[["", 3.0]]]}


def test_regress_rest(server):
    """testRegressREST"""
    url = f"{server[0]}/v1/models/default:regress"
    json_req = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"results": [3.0]}


def test_predict_rest(server):
    """testPredictREST"""
    url = f"{server[0]}/v1/models/default:predict"
    json_req = {"instances": [2.0, 3.0, 4.0]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"predictions": [3.0, 3.5, 4.0]}


def test_predict_columnar_rest(server):
    """testPredictColumnarREST"""
    url = f"{server[0]}/v1/models/default:predict"
    json_req = {"inputs": [2.0, 3.0, 4.0]}
    resp_data = call_rest(url, json_req)
    assert json.loads(resp_data.decode()) == {"outputs": [3.0, 3.5, 4.0]}


def test_get_status_rest(server):
    """testGetStatusREST: the folder `00000123` is version 123."""
    resp_data = call_rest(f"{server[0]}/v1/models/default", None)
    assert json.loads(resp_data.decode()) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_get_model_metadata_rest(server):
    """testGetModelMetadataREST: compared with upstream's half_plus_two_model_metadata.json."""
    resp_data = call_rest(f"{server[0]}/v1/models/default/metadata", None)
    expected_metadata = json.loads((DATA / "half_plus_two_model_metadata.json").read_text())
    assert sorted_object(json.loads(resp_data.decode())) == sorted_object(expected_metadata)


def test_prometheus_endpoint(server):
    """testPrometheusEndpoint"""
    resp_data = call_rest(f"{server[0]}/monitoring/prometheus/metrics", None)
    assert "# TYPE" in resp_data.decode("utf-8")


# ------------------------------------------------------------------ more of the same model


def post(server, path: str, body: dict) -> tuple[int, dict]:
    response = requests.post(server[0] + path, json=body, timeout=30)
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.json()


def test_classify_and_regress_several_examples_with_a_context(server):
    # y = 0.5 x + 2 (y2 = 0.5 x + 3); the context's x is used where an example has none.
    body = {"context": {"x": 10.0}, "examples": [{"x": 2.0}, {"x": [4.0]}, {"other": "a"}]}
    classify = {"signature_name": "classify_x_to_y", **body}
    assert post(server, "/v1/models/default:classify", classify) == (
        200,
        {"results": [[["", 3.0]], [["", 4.0]], [["", 7.0]]]},
    )
    regress = {"signature_name": "regress_x_to_y2", **body}
    assert post(server, "/v1/models/default/versions/123:regress", regress) == (
        200,
        {"results": [4.0, 5.0, 8.0]},
    )


def test_classify_and_regress_errors(server):
    status, body = post(
        server,
        "/v1/models/default:classify",
        {"signature_name": "classify_x_to_y", "examples": [{"y": 2.0}]},
    )
    # The model's own parse error, as TensorFlow's runtime words it: no Python stack with it.
    assert status == 400
    assert body["error"].startswith(
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found."
    )
    assert "File " not in body["error"] and "[Op:" not in body["error"]
    status, body = post(
        server,
        "/v1/models/default:regress",
        {"signature_name": "nope", "examples": [{"x": 2.0}]},
    )
    assert (status, body) == (400, {"error": "No signature was found with the name: nope"})
    # serving_default is a predict signature: no `inputs` input to feed examples to.
    status, body = post(server, "/v1/models/default:regress", {"examples": [{"x": 2.0}]})
    assert status == 400
    assert body["error"].startswith(
        'No regression inputs found in SignatureDef: inputs {\n  key: "x"'
    )
    status, body = post(
        server,
        "/v1/models/default:classify",
        {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
    )
    assert status == 400
    assert body["error"].startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: inputs {'
    )


def test_a_tf1_graph_takes_the_feed_as_given(server):
    # regress_x2_to_y3's input is declared [-1, 1]; TF Serving feeds [2] and [1, 2] as they are.
    for instances, predictions in [([1.0, 3.0], [3.5, 4.5]), ([[1.0, 3.0]], [[3.5, 4.5]])]:
        body = {"signature_name": "regress_x2_to_y3", "instances": instances}
        assert post(server, "/v1/models/default:predict", body) == (
            200,
            {"predictions": predictions},
        )
    assert post(server, "/v1/models/default:predict", {"instances": [[2.0], [3.0]]}) == (
        200,
        {"predictions": [[3.0], [3.5]]},
    )


def test_the_server_log_has_no_traceback(server):
    assert "Traceback" not in server[1].read_text()
