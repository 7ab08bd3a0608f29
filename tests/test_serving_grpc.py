"""gRPC on `python -m serving`: TF Serving's own gRPC tests, and every answer held to REST's.

The gRPC cases of tensorflow/serving's tensorflow_serving/model_servers/
tensorflow_model_server_test.py, ported with their requests and checks, on TF Serving's test
models (tests/data/half_plus_two/, Apache-2.0). Upstream starts one server per set of flags; so
do these, with free ports and a socket path of their own. What cannot run here:
testPredictOnTfLite and testPredictWithSignatureDefOnTfLite (no TF Lite models: the local server
serves SavedModels only), test_profiler_service_with_valid_trace_request (no profiler service),
test_tf_text (needs tensorflow-text and its test model), and _TestBadModel, which upstream itself
does not run (its name has no `test` prefix).
"""

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import free_port, wait_for
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

import settings

DATA = Path(__file__).parent / "data" / "half_plus_two"
HALF_PLUS_TWO = DATA / "saved_model_half_plus_two_cpu"
HALF_PLUS_TWO_TF2 = DATA / "saved_model_half_plus_two_tf2_cpu"
HALF_PLUS_THREE = DATA / "saved_model_half_plus_three"
RPC_TIMEOUT = 5.0  # tensorflow_model_server_test_base.RPC_TIMEOUT
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1)]


class Server:
    """A running `python -m serving` (RunServer()'s 3-tuple: process, gRPC and REST address)."""

    def __init__(self, tmp: Path, *flags: str, wait: bool = True):
        self.port, self.rest_port = free_port(), free_port()
        self.socket = tmp / "tf-serving.sock"
        self.log = tmp / "server.log"
        command = [
            sys.executable,
            "-m",
            "serving",
            "--port",
            str(self.port),
            "--rest_api_port",
            str(self.rest_port),
            "--grpc_socket_path",
            str(self.socket),
            *flags,
        ]
        with open(self.log, "w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, cwd=settings.ROOT
            )
        self.address = f"localhost:{self.port}"
        self.rest = f"http://localhost:{self.rest_port}"
        self.channel = grpc.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        if wait:
            wait_for(self.ready, 180, f"the server:\n{self.log.read_text()}")

    def ready(self) -> bool:
        """WaitForServerReady(): a request to a missing model is answered 'Servable not found'."""
        assert self.process.poll() is None, f"the server stopped:\n{self.log.read_text()}"
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "intentionally_missing_model"
        try:
            self.predictions.Predict(request, RPC_TIMEOUT)
        except grpc.RpcError as error:
            return "Servable" in (error.details() or "")
        return False

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    servers = []

    def start(*flags: str, wait: bool = True) -> Server:
        servers.append(Server(tmp_path_factory.mktemp("grpc"), *flags, wait=wait))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def tf1(start):
    return start(
        "--model_name",
        "default",
        "--model_base_path",
        str(HALF_PLUS_TWO),
        "--monitoring_config_file",
        str(DATA / "monitoring_config.txt"),
    )


@pytest.fixture(scope="module")
def tf2(start):
    return start("--model_name", "default", "--model_base_path", str(HALF_PLUS_TWO_TF2))


def version_of(model_path: Path) -> int:
    """_GetModelVersion()."""
    return int(next(p.name for p in model_path.iterdir()))


def verify_model_spec(spec, name: str, signature_name: str, version: int) -> None:
    """_VerifyModelSpec()."""
    assert spec.name == name
    assert spec.signature_name == signature_name
    assert spec.version.value == version


def verify_predict_request(
    address,
    expected_output,
    expected_version,
    model_name="default",
    specify_output=True,
    batch_input=False,
    signature_name="serving_default",
):
    """VerifyPredictRequest()."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        result = stub.Predict(request, RPC_TIMEOUT)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected_output
    verify_model_spec(result.model_spec, model_name, signature_name, expected_version)


def example_input(input_proto, x: float = 2.0) -> None:
    example = input_proto.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([x])


# ------------------------------------------------------------------ the upstream gRPC cases


def test_get_model_status(tf1):
    """testGetModelStatus"""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    result = tf1.models.GetModelStatus(request, RPC_TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 123
    assert result.model_version_status[0].status.error_code == 0


def test_get_model_metadata(tf1):
    """testGetModelMetadata"""
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    result = tf1.predictions.GetModelMetadata(request, RPC_TIMEOUT)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == version_of(HALF_PLUS_TWO)
    assert len(result.metadata) == 1
    assert "signature_def" in result.metadata


@pytest.mark.parametrize("which", ["tf1", "tf2"])
def test_classify(which, request):
    """testClassify, testClassifyTf2"""
    server = request.getfixturevalue(which)
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = "default"
    req.model_spec.signature_name = "classify_x_to_y"
    example_input(req.input)
    result = server.predictions.Classify(req, RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    verify_model_spec(result.model_spec, "default", "classify_x_to_y", 123)


@pytest.mark.parametrize("which", ["tf1", "tf2"])
def test_regress(which, request):
    """testRegress, testRegressTf2"""
    server = request.getfixturevalue(which)
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = "default"
    req.model_spec.signature_name = "regress_x_to_y"
    example_input(req.input)
    result = server.predictions.Regress(req, RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    verify_model_spec(result.model_spec, "default", "regress_x_to_y", 123)


@pytest.mark.parametrize("which", ["tf1", "tf2"])
def test_multi_inference(which, request):
    """testMultiInference, testMultiInferenceTf2"""
    server = request.getfixturevalue(which)
    req = inference_pb2.MultiInferenceRequest()
    req.tasks.add().model_spec.name = "default"
    req.tasks[0].model_spec.signature_name = "regress_x_to_y"
    req.tasks[0].method_name = "tensorflow/serving/regress"
    req.tasks.add().model_spec.name = "default"
    req.tasks[1].model_spec.signature_name = "classify_x_to_y"
    req.tasks[1].method_name = "tensorflow/serving/classify"
    example_input(req.input)
    result = server.predictions.MultiInference(req, RPC_TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        verify_model_spec(
            result.results[i].model_spec, "default", req.tasks[i].model_spec.signature_name, 123
        )


def test_predict_saved_model(tf1):
    """testPredictSavedModel (_TestPredict)"""
    verify_predict_request(tf1.address, expected_output=3.0, expected_version=123)
    verify_predict_request(
        tf1.address, expected_output=3.0, specify_output=False, expected_version=123
    )


def test_predict_uds(tf1):
    """testPredictUDS"""
    verify_predict_request(
        f"unix:{tf1.socket}", expected_output=3.0, specify_output=False, expected_version=123
    )


def test_good_model_config(start, tmp_path):
    """testGoodModelConfig"""
    config = tmp_path / "good_model_config.conf"
    config.write_text(
        (DATA / "good_model_config.txt")
        .read_text()
        .replace("${TEST_HALF_PLUS_TWO_DIR}", str(HALF_PLUS_TWO))
        .replace("${TEST_HALF_PLUS_THREE_DIR}", str(HALF_PLUS_THREE))
    )
    server = start("--model_config_file", str(config))
    for name, output in (("half_plus_two", 3.0), ("half_plus_three", 4.0)):
        for specify_output in (True, False):
            verify_predict_request(
                server.address,
                model_name=name,
                expected_output=output,
                specify_output=specify_output,
                expected_version=123,
            )


def test_bad_model_config(start):
    """testBadModelConfig"""
    server = start("--model_config_file", str(DATA / "bad_model_config.txt"), wait=False)
    assert server.process.wait(timeout=120) != 0
    assert (
        "Error parsing text-format tensorflow.serving.ModelServerConfig" in server.log.read_text()
    )


BASE_CONFIG = """
model_config_list: {{
  config: {{
    name: "{name}",
    base_path: "{model_path}",
    model_platform: "tensorflow"
  }}
}}
"""


@pytest.mark.parametrize("poll_period", [1, 0])
def test_model_config_reload(start, tmp_path, poll_period):
    """testModelConfigReload, testModelConfigReloadWithZeroPollPeriod"""
    config = tmp_path / "model_config.txt"
    config.write_text(BASE_CONFIG.format(name="half_plus_two", model_path=HALF_PLUS_TWO))
    server = start(
        "--model_config_file",
        str(config),
        "--model_config_file_poll_wait_seconds",
        str(poll_period),
    )
    verify_predict_request(
        server.address,
        model_name="half_plus_two",
        expected_output=3.0,
        specify_output=False,
        expected_version=123,
    )
    config.write_text(BASE_CONFIG.format(name="half_plus_three", model_path=HALF_PLUS_THREE))
    if poll_period:
        # Upstream sleeps 10 s; waiting for the new model is the same check, sooner.
        def reloaded() -> bool:
            try:
                verify_predict_request(
                    server.address,
                    model_name="half_plus_three",
                    expected_output=4.0,
                    specify_output=False,
                    expected_version=123,
                )
            except grpc.RpcError:
                return False
            return True

        wait_for(reloaded, 10, "the new config")
    else:
        time.sleep(poll_period + 1)
        verify_predict_request(
            server.address,
            model_name="half_plus_two",
            expected_output=3.0,
            specify_output=False,
            expected_version=123,
        )


def test_good_grpc_channel_args(start):
    """testGoodGrpcChannelArgs"""
    server = start(
        "--model_name",
        "default",
        "--model_base_path",
        str(HALF_PLUS_TWO),
        "--grpc_channel_arguments",
        "grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    )
    verify_predict_request(
        server.address, expected_output=3.0, specify_output=False, expected_version=123
    )


SAVED_AT_TEST_TIME = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    from tensorflow.python.saved_model import signature_constants

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    root_dir = sys.argv[1]
    # Upstream calls tf.saved_model.experimental.save, the name tf.saved_model.save once had.

    # test_tf_saved_model_save
    root = tf.train.Checkpoint()
    root.v1 = tf.Variable(3.)
    root.v2 = tf.Variable(2.)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    to_save = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(root, f"{root_dir}/saved/00000123", to_save)

    # test_tf_saved_model_save_multiple_signatures
    root = tf.train.Checkpoint()
    root.f = tf.function(lambda x: {"y": 1.}, input_signature=[tf.TensorSpec(None, tf.float32)])
    root.g = tf.function(lambda x: {"y": 2.}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(
        root, f"{root_dir}/signatures/00000123",
        signatures={signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: root.f,
                    "custom_signature_key": root.g})

    # test_sequential_keras_saved_model_save
    model = tf.keras.models.Sequential()
    model.add(tf.keras.layers.Input(dtype="float32", shape=(1,), name="x"))
    model.add(tf.keras.layers.Lambda(lambda x: x, name="y"))
    tf.saved_model.save(model, f"{root_dir}/keras/00000123")

    # test_distrat_sequential_keras_saved_model_save
    strategy = tf.distribute.MirroredStrategy(devices=("/cpu:0", "/cpu:1"))
    with strategy.scope():
        model = tf.keras.models.Sequential()
        model.add(tf.keras.layers.Input(dtype="float32", shape=(1,), name="x"))
        model.add(tf.keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros"))
        model.add(tf.keras.layers.Lambda(lambda x: x, name="y"))
    tf.saved_model.save(model, f"{root_dir}/distrat/00000123")
    """
)


@pytest.fixture(scope="module")
def saved_here(start, tmp_path_factory):
    """The four upstream tests that save a model first, each served under its own name."""
    root = tmp_path_factory.mktemp("saved_here")
    saved = subprocess.run(
        [sys.executable, "-c", SAVED_AT_TEST_TIME, str(root)], capture_output=True, text=True
    )
    assert saved.returncode == 0, saved.stderr
    names = ["saved", "signatures", "keras", "distrat"]
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(f'config {{ name: "{n}" base_path: "{root / n}" }}\n' for n in names)
        + "}\n"
    )
    return start("--model_config_file", str(config))


def test_tf_saved_model_save(saved_here):
    """test_tf_saved_model_save"""
    verify_predict_request(
        saved_here.address,
        model_name="saved",
        expected_output=12.0,
        specify_output=False,
        expected_version=123,
    )


def test_tf_saved_model_save_multiple_signatures(saved_here):
    """test_tf_saved_model_save_multiple_signatures"""
    verify_predict_request(
        saved_here.address,
        model_name="signatures",
        expected_output=2.0,
        expected_version=123,
        signature_name="custom_signature_key",
    )
    verify_predict_request(
        saved_here.address, model_name="signatures", expected_output=1.0, expected_version=123
    )


@pytest.mark.parametrize("name", ["keras", "distrat"])
def test_sequential_keras_saved_model_save(saved_here, name):
    """test_sequential_keras_saved_model_save, test_distrat_sequential_keras_saved_model_save.

    Keras 3 names a Sequential model's signature input `inputs` and its output `output_0`
    (Keras 2, which upstream wrote this for, named them after the layers, `x` and `y`): the
    aliases are read from the version's metadata, then the upstream request and checks."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = name
    metadata = saved_here.predictions.GetModelMetadata(request, RPC_TIMEOUT)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signature_map)
    signature = signature_map.signature_def["serving_default"]
    (x,), (y,) = signature.inputs, signature.outputs
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = name
    predict.model_spec.signature_name = "serving_default"
    predict.inputs[x].dtype = types_pb2.DT_FLOAT
    predict.inputs[x].float_val.append(2.0)
    predict.inputs[x].tensor_shape.dim.add().size = 1
    predict.inputs[x].tensor_shape.dim.add().size = 1
    result = saved_here.predictions.Predict(predict, RPC_TIMEOUT)
    assert result.outputs[y].dtype == types_pb2.DT_FLOAT
    assert list(result.outputs[y].float_val) == [2.0]
    verify_model_spec(result.model_spec, name, "serving_default", 123)


# ------------------------------------------------------------------ gRPC and REST, side by side


def grpc_answer(call, request) -> tuple[str, object]:
    """("OK", the reply) or (status code name, message)."""
    try:
        return "OK", call(request, RPC_TIMEOUT)
    except grpc.RpcError as e:
        return e.code().name, e.details()


def rest_answer(server: Server, path: str, body: dict | None = None) -> tuple[str, object]:
    """("OK", the JSON) or (TF Serving's status code name for the HTTP status, message)."""
    url = server.rest + path
    response = requests.post(url, json=body, timeout=30) if body else requests.get(url, timeout=30)
    if response.ok:
        return "OK", response.json()
    names = {400: ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), 404: ("NOT_FOUND",)}
    return names[response.status_code], response.json()["error"]


def same_error(grpc_result, rest_result) -> bool:
    return grpc_result[0] in rest_result[0] and grpc_result[1] == rest_result[1]


def tensor(values: list[float]):
    proto = predict_pb2.PredictRequest().inputs["x"]
    proto.dtype = types_pb2.DT_FLOAT
    proto.tensor_shape.dim.add().size = len(values)
    proto.float_val.extend(values)
    return proto


def predict_request(name="default", version=None, label=None, values=(2.0, 3.0, 4.0), **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in spec.items():
        setattr(request.model_spec, key, value)
    request.inputs["x"].CopyFrom(tensor(list(values)))
    return request


@pytest.mark.parametrize(
    "path, kwargs",
    [
        ("/v1/models/default:predict", {}),
        ("/v1/models/default/versions/123:predict", {"version": 123}),
        ("/v1/models/default/versions/7:predict", {"version": 7}),
        ("/v1/models/default/labels/stable:predict", {"label": "stable"}),
        ("/v1/models/nope:predict", {"name": "nope"}),
        ("/v1/models/nope/versions/1:predict", {"name": "nope", "version": 1}),
    ],
)
def test_predict_answers_as_rest_does(tf1, path, kwargs):
    grpc_result = grpc_answer(tf1.predictions.Predict, predict_request(**kwargs))
    rest_result = rest_answer(tf1, path, {"inputs": {"x": [2.0, 3.0, 4.0]}})
    if grpc_result[0] != "OK":
        assert same_error(grpc_result, rest_result), (grpc_result, rest_result)
        return
    assert rest_result == ("OK", {"outputs": [3.0, 3.5, 4.0]})
    assert list(grpc_result[1].outputs["y"].float_val) == [3.0, 3.5, 4.0]
    assert grpc_result[1].model_spec.version.value == 123


def test_classify_and_regress_answer_as_rest_does(tf1):
    body = {"context": {"x": 10.0}, "examples": [{"x": 2.0}, {"x": [4.0]}, {"other": "a"}]}
    cases = [
        ("classify_x_to_y", "classify", classification_pb2.ClassificationRequest),
        ("regress_x_to_y2", "regress", regression_pb2.RegressionRequest),
        ("nope", "regress", regression_pb2.RegressionRequest),
        ("regress_x_to_y", "classify", classification_pb2.ClassificationRequest),
        ("", "regress", regression_pb2.RegressionRequest),
    ]
    for signature, api, message in cases:
        request = message()
        request.model_spec.name = "default"
        request.model_spec.signature_name = signature
        context = request.input.example_list_with_context.context
        context.features.feature["x"].float_list.value.append(10.0)
        for example in body["examples"]:
            added = request.input.example_list_with_context.examples.add()
            for key, value in example.items():
                feature = added.features.feature[key]
                if isinstance(value, str):
                    feature.bytes_list.value.append(value.encode())
                else:
                    feature.float_list.value.extend(value if isinstance(value, list) else [value])
        call = tf1.predictions.Classify if api == "classify" else tf1.predictions.Regress
        grpc_result = grpc_answer(call, request)
        rest_body = {"signature_name": signature, **body} if signature else body
        rest_result = rest_answer(tf1, f"/v1/models/default:{api}", rest_body)
        if grpc_result[0] != "OK":
            assert same_error(grpc_result, rest_result), (signature, grpc_result, rest_result)
        elif api == "classify":
            classes = [
                [(c.label, c.score) for c in e.classes]
                for e in grpc_result[1].result.classifications
            ]
            assert rest_result == ("OK", {"results": [[list(c) for c in e] for e in classes]})
        else:
            values = [r.value for r in grpc_result[1].result.regressions]
            assert rest_result == ("OK", {"results": values})


def test_metadata_and_status_answer_as_rest_does(tf1):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "default"
    reply = tf1.predictions.GetModelMetadata(request, RPC_TIMEOUT)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(signature_map)
    rest = rest_answer(tf1, "/v1/models/default/metadata")[1]
    options = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    assert json_format.MessageToDict(signature_map, **options) == rest["metadata"]["signature_def"]
    assert json_format.MessageToDict(reply.model_spec, **options) == {
        **rest["model_spec"],
        "signature_name": "",
    }
    for version, path in [(None, ""), (123, "/versions/123"), (5, "/versions/5")]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "default"
        if version is not None:
            request.model_spec.version.value = version
        grpc_result = grpc_answer(tf1.models.GetModelStatus, request)
        rest_result = rest_answer(tf1, f"/v1/models/default{path}")
        if grpc_result[0] != "OK":
            assert same_error(grpc_result, rest_result)
        else:
            assert json_format.MessageToDict(grpc_result[1], **options) == rest_result[1]


def test_a_missing_signature_is_refused_as_each_api_refuses_it(tf1):
    """The one place TF Serving's two APIs word the same refusal differently: REST reads the
    signature while parsing the JSON (http_rest_api_handler.cc), gRPC in RunPredict()."""
    code, message = grpc_answer(tf1.predictions.Predict, predict_request(signature_name="nope"))
    assert (code, message) == ("FAILED_PRECONDITION", 'Serving signature key "nope" not found.')
    body = {"signature_name": "nope", "instances": [2.0]}
    assert rest_answer(tf1, "/v1/models/default:predict", body) == (
        ("INVALID_ARGUMENT", "FAILED_PRECONDITION"),
        'Serving signature name: "nope" not found in signature def',
    )


# ------------------------------------------------------------------ gRPC's own refusals


def refused(call, request) -> tuple[str, str]:
    code, message = grpc_answer(call, request)
    assert code != "OK", message
    return code, message


def test_bad_predict_requests_get_tf_servings_status_and_message(tf1):
    predict = tf1.predictions.Predict
    request = predict_request()
    request.inputs["z"].CopyFrom(tensor([1.0]))
    assert refused(predict, request) == (
        "INVALID_ARGUMENT",
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
        "Sent extra: {z}. Missing but required: {}.",
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["z"].CopyFrom(tensor([1.0]))
    assert refused(predict, request) == (
        "INVALID_ARGUMENT",
        "input tensor alias not found in signature: z. Inputs expected to be in the set {x}.",
    )
    request = predict_request()
    request.inputs["x"].tensor_shape.dim[0].size = -1
    assert refused(predict, request) == ("INVALID_ARGUMENT", "tensor parsing error: x")
    request = predict_request()
    request.inputs["x"].tensor_content = b"\0" * 5  # 3 floats are 12 bytes
    del request.inputs["x"].float_val[:]
    assert refused(predict, request) == ("INVALID_ARGUMENT", "tensor parsing error: x")
    request = predict_request()
    request.output_filter.append("w")
    assert refused(predict, request) == (
        "INVALID_ARGUMENT",
        "output tensor alias not found in signature: w Outputs expected to be in the set {y}.",
    )
    request = predict_request()
    request.output_filter.extend(["y", "y"])
    assert refused(predict, request) == ("INVALID_ARGUMENT", "duplicate output tensor alias: y")
    request = predict_request()
    request.inputs["x"].dtype = types_pb2.DT_DOUBLE
    request.inputs["x"].double_val.extend([2.0])
    assert refused(predict, request) == (
        "INVALID_ARGUMENT",
        "Expects arg[0] to be float but double is provided",
    )
    long_name = "v" * 2000
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs[long_name].CopyFrom(tensor([1.0]))
    code, message = refused(predict, request)
    assert len(message) == 1024 + len("...TRUNCATED") and message.endswith("v...TRUNCATED")


def test_a_tensor_is_read_as_tensorflow_reads_it(tf1):
    """Fewer values than elements repeat the last; none give zeros; tensor_content is raw."""
    for values, expected in [([2.0], [3.0, 3.0, 3.0]), ([], [2.0, 2.0, 2.0])]:
        request = predict_request(values=values)
        request.inputs["x"].tensor_shape.dim[0].size = 3
        reply = tf1.predictions.Predict(request, RPC_TIMEOUT)
        assert list(reply.outputs["y"].float_val) == expected
    request = predict_request()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([2.0, 4.0], np.float32)))
    assert request.inputs["x"].tensor_content  # numpy's bytes, not float_val
    reply = tf1.predictions.Predict(request, RPC_TIMEOUT)
    assert list(reply.outputs["y"].float_val) == [3.0, 4.0]


def test_messages_larger_than_grpcs_default_4_mb_pass_both_ways(tf1):
    """server.cc: SetMaxMessageSize(INT32_MAX)."""
    values = np.arange(2_000_000, dtype=np.float32)  # 8 MB in, 8 MB out
    request = predict_request()
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(values))
    reply = tf1.predictions.Predict(request, RPC_TIMEOUT * 6)
    assert np.array_equal(np.array(reply.outputs["y"].float_val, np.float32), values * 0.5 + 2)


def test_bad_classify_metadata_and_multi_inference_requests(tf1):
    stub = tf1.predictions
    request = classification_pb2.ClassificationRequest()
    assert refused(stub.Classify, request) == ("INVALID_ARGUMENT", "Missing ModelSpec")
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    assert refused(stub.Classify, request) == ("INVALID_ARGUMENT", "Input is empty.")
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "default"
    assert refused(stub.GetModelMetadata, metadata) == (
        "INVALID_ARGUMENT",
        "GetModelMetadataRequest must specify at least one metadata_field",
    )
    metadata.metadata_field.append("graph")
    assert refused(stub.GetModelMetadata, metadata) == (
        "INVALID_ARGUMENT",
        "Metadata field graph is not supported",
    )
    multi = inference_pb2.MultiInferenceRequest()
    example_input(multi.input)
    for name, signature, method in [
        ("default", "regress_x_to_y", "tensorflow/serving/regress"),
        ("other", "classify_x_to_y", "tensorflow/serving/classify"),
    ]:
        task = multi.tasks.add(method_name=method)
        task.model_spec.name, task.model_spec.signature_name = name, signature
    assert refused(stub.MultiInference, multi) == (
        "INVALID_ARGUMENT",
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    )
    multi.tasks[1].model_spec.name = "default"
    multi.tasks[1].model_spec.signature_name = "regress_x_to_y"
    assert refused(stub.MultiInference, multi) == (
        "INVALID_ARGUMENT",
        "Duplicate evaluation of signature: regress_x_to_y",
    )
    multi.tasks[1].model_spec.signature_name = "classify_x_to_y"
    multi.tasks[1].method_name = "tensorflow/serving/predict"
    assert refused(stub.MultiInference, multi) == (
        "UNIMPLEMENTED",
        "Unsupported signature method_name: tensorflow/serving/predict",
    )


def test_grpc_requests_are_counted_beside_rest_ones(tf1):
    page = requests.get(tf1.rest + "/monitoring/prometheus/metrics", timeout=30).text
    before = int(re.search(r'request_count\{model_name="default",status="OK"\} (\d+)', page)[1])
    tf1.predictions.Predict(predict_request(), RPC_TIMEOUT)
    page = requests.get(tf1.rest + "/monitoring/prometheus/metrics", timeout=30).text
    after = int(re.search(r'request_count\{model_name="default",status="OK"\} (\d+)', page)[1])
    assert after == before + 1
    assert 'model_name="default",API="Predict",entrypoint="GRPC",le="+Inf"' in page
    assert 'API="predict",entrypoint="REST"' in page  # the REST requests of the tests above


# ------------------------------------------------------------------ ModelService reloads


def reload_request(*entries: tuple[str, Path], labels: dict | None = None):
    request = model_management_pb2.ReloadConfigRequest()
    for name, path in entries:
        config = request.config.model_config_list.config.add(name=name, base_path=str(path))
        config.model_platform = "tensorflow"
        for label, version in (labels or {}).items():
            config.version_labels[label] = version
    return request


def test_handle_reload_config_request(start, tmp_path):
    config = tmp_path / "model_config.txt"
    config.write_text(BASE_CONFIG.format(name="half_plus_two", model_path=HALF_PLUS_TWO))
    server = start(
        "--model_config_file",
        str(config),
        "--max_num_load_retries",
        "0",
        "--file_system_poll_wait_seconds",
        "0.2",
    )
    reload = server.models.HandleReloadConfigRequest
    request = reload_request(("half_plus_three", HALF_PLUS_THREE))
    request.metric_names.append("/tensorflow/serving/model_load_count")
    reply = reload(request, 60)  # answered once the new model serves
    assert reply.status.error_code == 0 and [m.name for m in reply.metric] == list(
        request.metric_names
    )
    verify_predict_request(
        server.address, model_name="half_plus_three", expected_output=4.0, expected_version=123
    )

    def unloaded() -> bool:
        code, _ = grpc_answer(server.predictions.Predict, predict_request("half_plus_two"))
        return code == "NOT_FOUND"

    wait_for(unloaded, 30, "half_plus_two to be unloaded")

    request = model_management_pb2.ReloadConfigRequest()
    request.config.custom_model_config.type_url = "example.com/custom"
    assert refused(reload, request) == (
        "INVALID_ARGUMENT",
        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
        "Only ModelConfigList is currently supported",
    )
    request = reload_request(("half_plus_three", HALF_PLUS_THREE), labels={"stable": 999})
    assert refused(reload, request) == (
        "FAILED_PRECONDITION",
        "Request to assign label to version 999 of model half_plus_three, which is not "
        "currently available for inference",
    )
    request = reload_request(("half_plus_three", "relative/path"))
    assert refused(reload, request) == (
        "INVALID_ARGUMENT",
        "Expected model half_plus_three to have an absolute path or URI; "
        "got base_path()=relative/path",
    )
    bad = DATA / "bad_half_plus_two"
    request = reload_request(("half_plus_three", HALF_PLUS_THREE), ("bad", bad))
    code, message = refused(reload, request)
    assert code == "UNKNOWN"
    assert message.startswith(
        "1 model(s) did not become available: {{{name: bad version: 123} due to error: "
        "NOT_FOUND: Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
    )
    verify_predict_request(
        server.address, model_name="half_plus_three", expected_output=4.0, expected_version=123
    )


# ------------------------------------------------------------------ the product's own model


@pytest.fixture(scope="module")
def mnist(start, sample_model_base):
    return start(
        "--model_name",
        settings.MODEL_NAME,
        "--model_base_path",
        str(sample_model_base),
        "--enable_batching",
        "--batching_parameters_file",
        str(settings.ROOT / "serving" / "batching.config"),
    )


def test_the_digit_model_answers_grpc_as_it_answers_rest(mnist):
    """The README's two gRPC examples: the 28x28 tensor, and image bytes to predict_image."""
    import base64

    import cv2

    image = np.zeros((28, 28), np.float32)
    cv2.line(image, (14, 4), (14, 24), 1.0, 3)
    png = cv2.imencode(".png", (image * 255).astype(np.uint8))[1].tobytes()

    request = predict_pb2.PredictRequest()
    request.model_spec.name = settings.MODEL_NAME
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(image.reshape(1, 28, 28, 1)))
    reply = mnist.predictions.Predict(request, RPC_TIMEOUT)
    rest = rest_answer(
        mnist,
        f"/v1/models/{settings.MODEL_NAME}:predict",
        {"instances": image.reshape(1, 28, 28, 1).tolist()},
    )[1]
    assert list(reply.outputs["digit"].int64_val) == [rest["predictions"][0]["digit"]]
    assert np.allclose(
        reply.outputs["probabilities"].float_val, rest["predictions"][0]["probabilities"]
    )
    assert reply.model_spec.version.value == 1

    request = predict_pb2.PredictRequest()
    request.model_spec.name = settings.MODEL_NAME
    request.model_spec.signature_name = settings.IMAGE_SIGNATURE_NAME
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([png]))
    request.output_filter.append("digit")
    reply = mnist.predictions.Predict(request, RPC_TIMEOUT)
    body = {
        "signature_name": settings.IMAGE_SIGNATURE_NAME,
        "instances": [{"image_bytes": {"b64": base64.b64encode(png).decode()}}],
    }
    rest = rest_answer(mnist, f"/v1/models/{settings.MODEL_NAME}:predict", body)[1]
    assert list(reply.outputs) == ["digit"]
    assert list(reply.outputs["digit"].int64_val) == [rest["predictions"][0]["digit"]]


def test_concurrent_grpc_requests_join_batches_and_each_gets_its_answer(mnist):
    from concurrent.futures import ThreadPoolExecutor

    images = np.random.default_rng(0).random((16, 1, 28, 28, 1), np.float32)

    def ask(image):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = settings.MODEL_NAME
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
        return np.array(mnist.predictions.Predict(request, 30).outputs["probabilities"].float_val)

    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(ask, images))
    alone = [ask(image) for image in images]
    assert np.allclose(together, alone, atol=1e-5)


def test_the_readmes_grpc_example_reads_the_seven(mnist, capsys, monkeypatch):
    readme = (settings.ROOT / "README.md").read_text()
    block = re.search(
        r"\n((?:    .*\n|\n)*?    print\(reply.*\n)", readme[readme.index("    import grpc") - 1 :]
    )
    code = textwrap.dedent(block.group(1)).replace("localhost:8500", mnist.address)
    monkeypatch.chdir(settings.ROOT)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "7 1\n"


def test_a_bug_of_ours_answers_internal_error_for_every_rpc():
    """An unexpected exception is logged and answered as INTERNAL "Internal error", also in the
    RPCs that carry no metrics name (here HandleReloadConfigRequest)."""
    from serving.grpc_server import GrpcServer
    from serving.metrics import Metrics
    from serving.versions import Manager

    def broken(config):
        raise RuntimeError("a bug")

    manager = Manager([])
    server = GrpcServer(["localhost:0"], manager, Metrics(), broken)
    try:
        channel = grpc.insecure_channel(f"localhost:{server.ports[0]}")
        request = model_management_pb2.ReloadConfigRequest()
        request.config.model_config_list.config.add(name="m", base_path="/nowhere")
        with pytest.raises(grpc.RpcError) as e:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                request, RPC_TIMEOUT
            )
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INTERNAL, "Internal error")
    finally:
        server.stop()
        manager.stop()
