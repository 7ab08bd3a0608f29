"""The local server's parts without a model: JSON tensor rules, config files, batching, metrics."""

import threading
import time

import numpy as np
import pytest

from serving import classify_regress, json_tensor
from serving.batching import Batcher
from serving.config import (
    BatchingParameters,
    ModelConfig,
    read_batching_parameters,
    read_model_config_file,
    read_prometheus_path,
)
from serving.http_server import HttpServer, error_page
from serving.json_tensor import COLUMNAR, ROW, TensorSpec
from serving.metrics import Metrics
from serving.status import ServingError
from serving.versions import Manager, Servable, version_folders

IMAGE = {"image": TensorSpec(np.dtype(np.float32), (-1, 2, 2, 1))}
TEXT = {"text_bytes": TensorSpec(np.dtype(object), (-1,))}


def error(fn, *args) -> tuple[str, str]:
    with pytest.raises(ServingError) as info:
        fn(*args)
    return info.value.code, info.value.message


def parse_predict(body: bytes, inputs=IMAGE):
    doc = json_tensor.parse_json(body)
    json_tensor.signature_name(doc)
    return json_tensor.predict_inputs(doc, inputs)


# ------------------------------------------------------------------ request parsing


def test_row_and_columnar_formats_build_the_same_batch():
    image = [[[0.0], [0.5]], [[1.0], [0.25]]]
    rows, fmt = parse_predict(
        b'{"instances": [%s, %s]}' % (str(image).encode(), str(image).encode())
    )
    assert fmt == ROW
    assert rows["image"].dtype == np.float32 and rows["image"].shape == (2, 2, 2, 1)
    columns, fmt = parse_predict(b'{"inputs": {"image": [%s]}}' % str(image).encode())
    assert fmt == COLUMNAR
    np.testing.assert_array_equal(columns["image"][0], rows["image"][1])
    named, _ = parse_predict(b'{"instances": [{"image": %s}]}' % str(image).encode())
    np.testing.assert_array_equal(named["image"], columns["image"])


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"instances = [1, 2]", "JSON Parse error: Invalid value. at offset: 0"),
        (
            b'{"instances": [1, 2}',
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 19",
        ),
        (b"[1]", "JSON Value: [\n    1\n] Is not object"),
        (
            b'{"signature_name": 100}',
            'JSON Value: {\n    "signature_name": 100\n} not formatted correctly. '
            "'signature_name' key must be a string value.",
        ),
        (
            b'{"instances": [], "inputs": []}',
            'JSON Value: {\n    "instances": [],\n    "inputs": []\n} Not formatted correctly '
            "expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (
            b'{"instances": 5}',
            "JSON Value: {\n    \"instances\": 5\n} Excepting 'instances' to be an list/array",
        ),
        (
            b'{"instances": []}',
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        (b'{"x": 1}', "Missing 'inputs' or 'instances' key"),
        (
            b'{"instances": ["x"]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            'JSON Value: "x" Type: String is not of expected type: float',
        ),
        (
            b'{"instances": [[1.0], [2.0, 3.0]]}',
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Expecting tensor size: 1 but got: 2",
        ),
        (
            b'{"instances": [[true]]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            "JSON Value: true Type: True is not of expected type: float",
        ),
        (
            b'{"inputs": [[1.0], [2.0, 3.0]]}',
            "Encountered list at unexpected size: 2 at level: 1 expected size: 1",
        ),
        (
            b'{"inputs": [1e39]}',
            "Cannot convert JSON value: 1e+39 to float without loss of precision.",
        ),
        (b'{"inputs": {"other": [1.0]}}', "Missing named input: image in 'inputs' object."),
    ],
)
def test_bad_requests_get_tf_servings_messages(body, message):
    assert error(parse_predict, body) == ("INVALID_ARGUMENT", message)


def test_nan_and_infinity_are_accepted_as_tf_serving_accepts_them():
    arrays, _ = parse_predict(b'{"inputs": [NaN, Infinity, -Infinity]}')
    values = arrays["image"]
    assert np.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf


def test_binary_values_come_in_and_go_out_as_b64():
    arrays, _ = parse_predict(b'{"instances": [{"b64": "aGVsbG8="}, {"b64": "AP8"}]}', TEXT)
    assert arrays["text_bytes"].tolist() == [b"hello", b"\x00\xff"]
    assert error(parse_predict, b'{"instances": [{"b64": "%%%"}]}', TEXT)[1].endswith(
        "Unable to base64 decode"
    )
    body = json_tensor.make_json({"text_bytes": arrays["text_bytes"]}, ROW)
    assert '{"b64": "aGVsbG8="}' in body and '{"b64": "AP8="}' in body


FLOATS = {"x": TensorSpec(np.dtype(np.float32), None)}


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1, 2], [3, 4]]}',
        b' {\n "inputs" :[1.5, -2e3, 0, -0, 1E5, 2e-3] } ',
        b'{"instances": [[[1], [2]], [[3], [4]]]}',
        b'{"instances": [[[0.25, 0.5]], [[0.75, 1.0]]]}',
    ],
)
def test_plain_numeric_bodies_take_the_fast_path_to_the_same_arrays(body):
    fast = json_tensor.numeric_inputs(json_tensor.numeric_body(body), FLOATS)
    general = json_tensor.predict_inputs(json_tensor.parse_json(body), FLOATS)
    assert fast[1] == general[1]
    assert fast[0]["x"].dtype == general[0]["x"].dtype == np.float32
    np.testing.assert_array_equal(fast[0]["x"], general[0]["x"])


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[1, 2], [3]]}',  # ragged
        b'{"instances": [[1, 2], []]}',
        b'{"instances": [[1, 2], 3]}',
        b'{"instances": [[1, 2]], [[3, 4]]}',
        b'{"instances": []}',
        b'{"instances": [[]]}',
        b'{"instances": [1,, 2]}',  # not JSON
        b'{"instances": [1 2]}',
        b'{"instances": [.5]}',
        b'{"instances": [+1]}',
        b'{"instances": [01]}',
        b'{"instances": [1]} x',
        b'{"instances": [1]}}',
        b'{"instances": [1]',
        b'{"instances": [true]}',  # a bool where a number is expected
        b'{"instances": [NaN]}',  # literals the json module reads
        b'{"instances": [16777217]}',  # more than a float32 holds exactly
        b'{"instances": [1e400]}',
        b'{"instances": [99999999999999999999999]}',
        b'{"instances": [1], "signature_name": "serving_default"}',
        b'{"instances": [{"x": 1}]}',
    ],
)
def test_anything_else_is_left_to_the_general_path(body):
    numeric = json_tensor.numeric_body(body)
    assert numeric is None or json_tensor.numeric_inputs(numeric, FLOATS) is None


def test_the_fast_path_leaves_other_tensor_types_and_several_inputs_alone():
    numeric = json_tensor.numeric_body(b'{"instances": [1, 2]}')
    assert numeric is not None
    assert json_tensor.numeric_inputs(numeric, {"x": TensorSpec(np.dtype(np.int64), None)}) is None
    assert json_tensor.numeric_inputs(numeric, {**FLOATS, "y": FLOATS["x"]}) is None


# ------------------------------------------------------------------ classify / regress


def examples(body: bytes) -> list:
    """The request's examples as the signature receives them, parsed back into tf.Examples."""
    from google.protobuf import text_format
    from tensorflow.core.example import example_pb2

    tensor = json_tensor.examples_from_json(json_tensor.parse_json(body))
    assert tensor.dtype == object and tensor.ndim == 1
    return [text_format.MessageToString(example_pb2.Example.FromString(t)) for t in tensor]


def example(**features) -> str:
    """A tf.Example in text format; each feature is (kind, values), kind None for none."""
    from google.protobuf import text_format
    from tensorflow.core.example import example_pb2

    proto = example_pb2.Example()
    for name, (kind, values) in features.items():
        feature = proto.features.feature[name]
        if kind is not None:
            getattr(feature, kind).value.extend(values)
    return text_format.MessageToString(proto)


def test_examples_become_tf_examples_by_tf_servings_rules():
    # json_tensor_test.cc RequestNoContext
    body = b"""{"examples": [
        {"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},
        {"names": ["baz"], "ratings": 6.0}]}"""
    assert examples(body) == [
        example(
            names=("bytes_list", [b"foo", b"bar"]),
            ratings=("float_list", [8.0, 9.0]),
            age=("int64_list", [20]),
        ),
        example(names=("bytes_list", [b"baz"]), ratings=("float_list", [6.0])),
    ]
    # RequestWithContextAndSignature: each example carries the context; its own features win.
    body = b"""{"signature_name": "custom", "context": {"query": "pizza", "ratings": [1.0]},
        "examples": [
            {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, true, false]},
            {"names": "bar", "ratings": [-Infinity, NaN]},
            {"big": 18446744073709551616, "empty": []}]}"""
    inf, nan = float("inf"), float("nan")
    query = ("bytes_list", [b"pizza"])
    assert examples(body) == [
        example(
            query=query,
            ratings=("float_list", [6.0]),
            names=("bytes_list", [b"baz", b"hello"]),
            intboolmix=("int64_list", [1, 1, 0]),
        ),
        example(query=query, ratings=("float_list", [-inf, nan]), names=("bytes_list", [b"bar"])),
        # Integers beyond 64 bits are doubles to rapidjson; an empty list is a feature of no kind.
        example(
            query=query,
            ratings=("float_list", [1.0]),
            big=("float_list", [2.0**64]),
            empty=(None, []),
        ),
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        # json_tensor_test.cc ClassifyRegressRequestTest.JsonErrors, whole messages.
        (
            b'{"signature_name": ["hello"], "examples": [{"names": ["foo"]}]}',
            'JSON Value: {\n    "signature_name": [\n        "hello"\n    ],\n    "examples": '
            '[\n        {\n            "names": [\n                "foo"\n            ]\n'
            "        }\n    ]\n} not formatted correctly. 'signature_name' key must be a "
            "string value.",
        ),
        (b'{"context": [{"names": ["foo"]}]}', "Example must be JSON object but got JSON Array"),
        (
            b'{"examples": {"names": "foo"}}',
            'JSON Value: {\n    "examples": {\n        "names": "foo"\n    }\n} '
            "Expecting 'examples' value to be an list/array",
        ),
        (b'{"examples": [[{"names": "foo"}]]}', "Example must be JSON object but got JSON Array"),
        (
            b'{"examples": [{"names": [10, null]}]}',
            "Feature: names has element with unexpected JSON type: Null",
        ),
        (
            b'{"examples": [{"names": [10, 10.0]}]}',
            "Unexpected element type in feature: names expecting type: int64",
        ),
        (
            b'{"examples": [{"names": [1.5, "x"]}]}',
            "Unexpected element type in feature: names expecting type: float",
        ),
        (
            b'{"examples": [{"names": [10, {"test": 10}]}]}',
            "Feature: names has element with unexpected JSON type: Object",
        ),
        (
            b'{"examples": [{"names": [[10], 20]}]}',
            "Feature: names has element with unexpected JSON type: Array",
        ),
        (
            b'{"examples": [{"names": [20, 18446744073709551603]}]}',
            "Feature: names has uint64_t element. Only int64_t is supported.",
        ),
        (b'{"examples": [{"names": {"b64": "%%"}}]}', "Unable to base64 decode"),
        (
            b'{"instances": [1]}',
            'JSON Value: {\n    "instances": [\n        1\n    ]\n} '
            "When method is classify, key 'examples' is expected and was not found",
        ),
        (
            b'{"examples": []}',
            "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array",
        ),
    ],
)
def test_bad_examples_get_tf_servings_messages(body, message):
    def parse():
        doc = json_tensor.parse_json(body)
        json_tensor.signature_name(doc)
        json_tensor.examples_from_json(doc)

    assert error(parse) == ("INVALID_ARGUMENT", message)


def test_classify_and_regress_results_are_shaped_and_written_as_tf_serving_does():
    scores = np.array([[0.25, 0.75], [1.0, 0.0]], np.float32)
    classes = np.array([[b"cat", b"dog"], [b"cat", b"dog"]], object)
    body = classify_regress.results_json("classify", {"scores": scores, "classes": classes}, 2)
    # PrettyWriter as MakeJsonFromClassificationResult() sets it: one line per example's list.
    assert body == (
        '{\n    "results": [[["cat", 0.25], ["dog", 0.75]], [["cat", 1.0], ["dog", 0.0]]\n    ]\n}'
    )
    only_classes = classify_regress.classifications({"classes": classes[:1]}, 1)
    assert only_classes == [[(b"cat", 0.0), (b"dog", 0.0)]]
    body = classify_regress.results_json(
        "regress", {"outputs": np.array([[3.0], [3.5]], np.float32)}, 2
    )
    assert body == '{\n    "results": [3.0, 3.5]\n}'


@pytest.mark.parametrize(
    "api, outputs, message",
    [
        (
            "classify",
            {"scores": np.zeros(2, np.float32)},
            "Expected Tensor shape: [batch_size num_classes] but got [2]",
        ),
        (
            "classify",
            {"scores": np.zeros((2, 1), np.float64)},
            "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE",
        ),
        (
            "classify",
            {"classes": np.zeros((2, 1), np.int64)},
            "Expected classes Tensor of DT_STRING. Got: DT_INT64",
        ),
        (
            "classify",
            {"scores": np.zeros((3, 1), np.float32)},
            "Expected scores output batch size of 2. Got: 3",
        ),
        (
            "classify",
            {"scores": np.zeros((2, 2), np.float32), "classes": np.full((2, 3), b"a", object)},
            "Tensors class and score should match in dim_size(1). Got 3 vs. 2",
        ),
        (
            "regress",
            {"outputs": np.zeros((2, 2), np.float32)},
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            "[2,2]",
        ),
        (
            "regress",
            {"outputs": np.zeros(3, np.float32)},
            "Input batch size did not match output batch size: 2 vs. 3",
        ),
        (
            "regress",
            {"outputs": np.zeros(2, np.int64)},
            "Expected output Tensor of DT_FLOAT.  Got: DT_INT64",
        ),
    ],
)
def test_classify_and_regress_outputs_tf_serving_refuses(api, outputs, message):
    assert error(classify_regress.results_json, api, outputs, 2) == ("INVALID_ARGUMENT", message)


# ------------------------------------------------------------------ response writing


def test_floats_are_written_as_tf_serving_writes_them():
    values = np.array([0.2, 1.0, 0.123456789, 3e-05, 9000000.0, np.nan, -np.inf], np.float32)
    texts = [json_tensor.format_float32(float(v)) for v in values]
    assert texts == ["0.2", "1.0", "0.123456791", "3e-05", "9e+06", "NaN", "-Infinity"]


def test_row_and_columnar_responses_have_tf_servings_shapes():
    import json

    outputs = {
        "digit": np.array([7, 1], np.int64),
        "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]], np.float32),
    }
    assert json.loads(json_tensor.make_json(outputs, ROW)) == {
        "predictions": [
            {"digit": 7, "probabilities": [0.25, 0.75]},
            {"digit": 1, "probabilities": [1.0, 0.0]},
        ]
    }
    assert json.loads(json_tensor.make_json(outputs, COLUMNAR)) == {
        "outputs": {"digit": [7, 1], "probabilities": [[0.25, 0.75], [1.0, 0.0]]}
    }
    single = {"probabilities": outputs["probabilities"]}
    assert json.loads(json_tensor.make_json(single, ROW)) == {
        "predictions": [[0.25, 0.75], [1.0, 0.0]]
    }


# ------------------------------------------------------------------ config files


def test_models_config_base_path_resolves_inside_models_root(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "mnist" base_path: "/models/mnist" '
        'model_platform: "tensorflow" model_version_policy { latest { num_versions: 2 } } '
        'version_labels { key: "stable" value: 1 } } }'
    )
    (model,) = read_model_config_file(config, tmp_path / "models")
    assert model.base_path == (tmp_path / "models" / "mnist").resolve()
    assert (model.policy, model.num_versions, model.labels) == ("latest", 2, {"stable": 1})
    config.write_text('model_config_list { config { name: "m" base_path: "relative/m" } }')
    with pytest.raises(ValueError, match="to have an absolute path"):
        read_model_config_file(config, None)
    config.write_text("model_config_list { config { nme: 1 } }")
    with pytest.raises(ValueError, match="Invalid protobuf file"):
        read_model_config_file(config, None)


def test_batching_and_monitoring_text_protos(tmp_path):
    batching = tmp_path / "batching.config"
    batching.write_text(
        "# comment\nmax_batch_size { value: 8 }\nbatch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 3 }\n"
    )
    assert read_batching_parameters(batching) == BatchingParameters(8, 500, 3, 2)
    batching.write_text("max_batch_size { value: 8 }")
    assert read_batching_parameters(batching) == BatchingParameters(max_batch_size=8)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config {\n  enable: true,\n  path: "/metrics/x"\n}\n')
    assert read_prometheus_path(monitoring, "/default") == "/metrics/x"
    monitoring.write_text("prometheus_config { enable: true }")
    assert read_prometheus_path(monitoring, "/default") == "/default"
    monitoring.write_text("prometheus_config { enable: false }")
    assert read_prometheus_path(monitoring, "/default") is None
    # Without a monitoring config TF Serving exports no metrics.
    assert read_prometheus_path(None, "/default") is None


@pytest.mark.parametrize(
    "name, text",
    [
        ("batching.config", "max_batch_sise { value: 8 }"),
        ("batching.config", "max_batch_size: 8"),
        ("batching.config", "max_batch_size { value: 8.5 }"),
        ("monitoring.config", "prometheus_config { enabled: true }"),
        ("monitoring.config", 'prometheus_config { enable: "yes" }'),
    ],
)
def test_a_misspelt_or_mistyped_config_field_stops_the_server_from_starting(
    tmp_path, caplog, name, text
):
    """As TF Serving's ParseProtoTextFile(): the file is refused and the server does not start."""
    from serving.__main__ import main

    config = tmp_path / name
    config.write_text(text)
    flag = "--batching_parameters_file" if name == "batching.config" else "--monitoring_config_file"
    argv = ["--model_base_path", str(tmp_path), "--enable_batching", flag, str(config)]
    with caplog.at_level("ERROR", logger="serving"):
        assert main(argv) == 1
    (record,) = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "serving"]
    assert record.getMessage().startswith(
        f"Failed to start server. Error: Invalid protobuf file: '{config}': 1:"
    )


# ------------------------------------------------------------------ batching and metrics


def submit_and_wait(batcher: Batcher, inputs: dict) -> tuple:
    """(outputs, error) as the batcher's callback gets them."""
    answer, finished = [], threading.Event()

    def done(outputs, err):
        answer.extend((outputs, err))
        finished.set()

    batcher.submit(inputs, done)
    assert finished.wait(10)
    return tuple(answer)


def run_batched(batcher: Batcher, inputs: dict) -> dict:
    outputs, err = submit_and_wait(batcher, inputs)
    if err is not None:
        raise err
    return outputs


def test_batcher_merges_concurrent_requests_and_returns_each_its_rows():
    batch_sizes = []

    def model(inputs):
        batch_sizes.append(len(inputs["x"]))
        time.sleep(0.02)  # a model call long enough for others to queue up meanwhile
        return {"y": inputs["x"] * 2}

    batcher = Batcher(model, BatchingParameters(max_batch_size=8, batch_timeout_micros=5000), "t")
    results, failures = {}, []

    def client(i):
        rows = np.full((1 + i % 3, 2), i, np.float32)
        try:
            results[i] = (rows, run_batched(batcher, {"x": rows})["y"])
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            failures.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    batcher.stop()
    assert not failures and len(results) == 24
    for rows, out in results.values():
        np.testing.assert_array_equal(out, rows * 2)
    assert max(batch_sizes) <= 8
    assert len(batch_sizes) < 24  # some requests shared a model call
    code, message = error(run_batched, batcher, {"x": np.zeros((9, 2), np.float32)})
    assert message == "Task size 9 is larger than maximum input batch size 8"


def test_batcher_submit_answers_through_the_callback_and_reports_model_errors():
    def model(inputs):
        if (inputs["x"] < 0).any():
            raise ValueError("negative")
        return {"y": inputs["x"] + 1}

    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=2)
    batcher = Batcher(model, params, "t")
    outputs, err = submit_and_wait(batcher, {"x": np.ones((2, 1), np.float32)})
    assert err is None
    np.testing.assert_array_equal(outputs["y"], np.full((2, 1), 2, np.float32))
    outputs, err = submit_and_wait(batcher, {"x": -np.ones((1, 1), np.float32)})
    assert outputs is None and str(err) == "negative"
    batcher.stop()


def test_calls_handed_to_the_loop_share_wake_ups_run_in_order_and_a_failure_loses_none():
    server = HttpServer(("127.0.0.1", 0), lambda request, respond: None, 1024, error_page)
    loop_thread = threading.Thread(target=server.serve_forever)
    loop_thread.start()
    try:
        while server.loop is None or not server.loop.is_running():
            time.sleep(0.01)
        wake_ups = []
        real = server.loop.call_soon_threadsafe
        server.loop.call_soon_threadsafe = lambda *a: wake_ups.append(a) or real(*a)
        ran, busy, release = [], threading.Event(), threading.Event()

        def call(i):
            ran.append((i, threading.current_thread() is loop_thread))
            if i == 0:  # holds the loop while the others are handed over
                busy.set()
                assert release.wait(10)
            if i == 3:
                raise RuntimeError("this one fails")

        server.call_soon(call, 0)
        assert busy.wait(10)

        def hand_over(start):  # two threads, as two batch threads hand over their answers
            for i in range(start, 200, 2):
                server.call_soon(call, i)

        workers = [threading.Thread(target=hand_over, args=(k,)) for k in (1, 2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        release.set()
        deadline = time.monotonic() + 10
        while len(ran) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(i for i, _ in ran) == list(range(200))
        assert all(on_loop for _, on_loop in ran)
        for k in (0, 1):  # each thread's calls ran in the order it handed them over
            mine = [i for i, _ in ran if i % 2 == k]
            assert mine == sorted(mine)
        # The first call woke the loop; the 199 handed over while it ran shared one wake-up.
        assert len(wake_ups) == 2
    finally:
        server.shutdown()
        server.server_close()
        loop_thread.join(10)


def test_metrics_page_has_tf_serving_names():
    metrics = Metrics()
    metrics.record("mnist", "predict", "OK", 0.002)
    metrics.record("mnist", "predict", "INVALID_ARGUMENT", 0.0001)
    page = metrics.page()
    assert ':tensorflow:serving:request_count{model_name="mnist",status="OK"} 1' in page
    assert (
        ':tensorflow:serving:request_count{model_name="mnist",status="INVALID_ARGUMENT"} 1' in page
    )
    # http_server.cc records the latency of answered requests only.
    assert (
        ':tensorflow:serving:request_latency_bucket{model_name="mnist",API="predict",'
        'entrypoint="REST",le="+Inf"} 1' in page
    )


# ------------------------------------------------------------------ versions and policies


def fake_loader(fail: set[int] = frozenset()):
    """Stands in for SavedModel loading: versions in `fail` raise, others load instantly."""

    def load(name, version, path, batching):
        if version in fail:
            raise ServingError("DATA_LOSS", f"cannot read {path}")
        return Servable(name, version, signatures={})

    return load


def make_versions(base, *names):
    for name in names:
        (base / str(name)).mkdir(parents=True, exist_ok=True)


def states(manager) -> dict[int, str]:
    return {v: s.state for v, s in manager.status("m", None)}


@pytest.mark.parametrize(
    "policy, expected",
    [
        (dict(num_versions=1), {3: "AVAILABLE"}),
        (dict(num_versions=2), {3: "AVAILABLE", 2: "AVAILABLE"}),
        (dict(policy="all"), {3: "AVAILABLE", 2: "AVAILABLE", 1: "AVAILABLE"}),
        (dict(policy="specific", versions=(1, 7)), {1: "AVAILABLE"}),
    ],
)
def test_version_policies_and_non_numeric_folders(tmp_path, policy, expected):
    make_versions(tmp_path, 1, 2, 3, ".export-4", "tmp")
    manager = Manager([ModelConfig("m", tmp_path, **policy)], loader=fake_loader())
    manager.poll()
    assert states(manager) == expected


def test_version_folders_are_read_as_tf_serving_reads_them(tmp_path):
    """file_system_storage_path_source.cc: a child whose name absl::SimpleAtoi() reads as a
    number is a version, loaded from that very child."""
    names = ["00000123", "7", "+8", " 9 ", "x12", "1e3", "12a", "-1", "99999999999999999999"]
    make_versions(tmp_path, *names)
    (tmp_path / "10").write_text("")  # TF Serving lists files too (and fails to load them)
    assert version_folders(tmp_path) == {
        123: tmp_path / "00000123",
        7: tmp_path / "7",
        8: tmp_path / "+8",
        9: tmp_path / " 9 ",
        10: tmp_path / "10",
    }
    assert version_folders(tmp_path / "missing") == {}


def test_a_version_is_loaded_from_its_own_folder_leading_zeros_and_all(tmp_path, caplog):
    loaded = {}

    def loader(name, version, path, batching):
        loaded[version] = path
        return Servable(name, version, signatures={})

    make_versions(tmp_path, "00000123", "0001", "001", "1")
    manager = Manager([ModelConfig("m", tmp_path, policy="all")], loader=loader)
    with caplog.at_level("WARNING", logger="serving"):
        manager.poll()
    assert loaded == {123: tmp_path / "00000123", 1: tmp_path / "1"}
    assert states(manager) == {123: "AVAILABLE", 1: "AVAILABLE"}
    assert manager.acquire("m", 123, None).version == 123
    # As TF Serving: of the names of one version, the last in name order is loaded.
    assert "Version 1 will be loaded from 1, 001 will be ignored." in caplog.text


def test_old_version_unloads_only_after_its_in_flight_requests(tmp_path):
    make_versions(tmp_path, 1)
    manager = Manager([ModelConfig("m", tmp_path)], loader=fake_loader())
    manager.poll()
    held = manager.acquire("m", None, None)  # a request still running on version 1
    make_versions(tmp_path, 2)
    manager.poll()
    assert states(manager) == {2: "AVAILABLE", 1: "UNLOADING"}
    assert manager.acquire("m", None, None).version == 2
    with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(m, 1\)"):
        manager.acquire("m", 1, None)
    time.sleep(0.2)
    assert states(manager)[1] == "UNLOADING"
    manager.release(held)
    deadline = time.monotonic() + 5
    while states(manager)[1] != "END" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert states(manager) == {2: "AVAILABLE", 1: "END"}


def test_a_failed_version_keeps_the_serving_one(tmp_path):
    make_versions(tmp_path, 1)
    manager = Manager(
        [ModelConfig("m", tmp_path)], loader=fake_loader(fail={2}), max_load_retries=0
    )
    manager.poll()
    make_versions(tmp_path, 2)
    manager.poll()
    (one, two) = sorted(manager.status("m", None))
    assert (two[1].state, two[1].error_code) == ("END", "DATA_LOSS")
    assert two[1].error_message == f"cannot read {tmp_path / '2'}"
    assert one[1].state == "AVAILABLE" and manager.acquire("m", None, None).version == 1


def test_labels_need_available_versions_unless_allowed(tmp_path):
    make_versions(tmp_path, 1, 2)
    config = ModelConfig("m", tmp_path, policy="all", labels={"stable": 1})
    with pytest.raises(ServingError) as refused:
        Manager([config], loader=fake_loader())
    assert refused.value.message == (
        "Request to assign label to version 1 of model m, which is not currently available "
        "for inference"
    )
    manager = Manager([config], loader=fake_loader(), allow_labels_for_unavailable=True)
    manager.poll()
    assert manager.acquire("m", None, "stable").version == 1
    manager.reload_config([ModelConfig("m", tmp_path, policy="all", labels={"stable": 2})])
    assert manager.acquire("m", None, "stable").version == 2
    # Moving a label that exists onto a version that is not loaded: the reload is rejected.
    with pytest.raises(ServingError, match="version 9 of model m"):
        manager.reload_config([ModelConfig("m", tmp_path, policy="all", labels={"stable": 9})])
    assert manager.acquire("m", None, "stable").version == 2


def test_arrays_of_floats_are_written_as_each_float_is():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.random(200, np.float32),
            rng.standard_normal(200).astype(np.float32) * 1e30,
            np.array([16777216.0, 1.0, 0.0, -0.0, 3.4028235e38, 1e-45, 0.1], np.float32),
        ]
    )
    expected = [json_tensor.format_float32(float(v)) for v in values]
    assert json_tensor._float32_texts(values) == expected
    assert json_tensor._float32_texts(values[:10]) == expected[:10]
