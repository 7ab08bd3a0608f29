"""The `predict_image` signature: encoded images in, digits out, in a graph stock TF Serving runs;
and the local server serving it as TF Serving does (b64 strings, both formats, its errors)."""

import base64
import io
import shutil
import struct
import threading

import cv2
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import serving_in_process
from PIL import Image
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import kernels, op_def_registry

import settings
from client.preprocess import digit_crops, encode_png
from export.saved_model import IMAGE_INPUT_NAME, IMAGE_SIGNATURE_NAME, SIGNATURE_NAME
from serving.config import BatchingParameters, ModelConfig
from serving.status import ServingError
from serving.versions import WARMUP_FILE, load_servable, warm_up

# Kernels TensorFlow registers from its Python layer (tensorflow/python/lib/core/py_func.cc): the
# ops are defined in tensorflow/core/ops/script_ops.cc, so they look like core ops, but
# tensorflow_model_server does not link that Python code and cannot run them.
PYTHON_ONLY_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.fixture(scope="module")
def version(tiny_model_base):
    return tiny_model_base / "1"


@pytest.fixture(scope="module")
def signatures(version):
    loaded = tf.saved_model.load(str(version))
    return loaded.signatures[SIGNATURE_NAME], loaded.signatures[IMAGE_SIGNATURE_NAME], loaded


def canvas(digit: str, width: int = 18) -> np.ndarray:
    """A digit drawn on the browser's canvas: white ink on transparent black, RGBA."""
    ink = np.zeros((280, 280), np.uint8)
    shapes = {
        "1": lambda: cv2.line(ink, (140, 40), (130, 240), 255, width, cv2.LINE_AA),
        "7": lambda: cv2.polylines(
            ink, [np.array([[70, 60], [210, 60], [120, 230]])], False, 255, width, cv2.LINE_AA
        ),
        "0": lambda: cv2.ellipse(ink, (140, 140), (60, 100), 0, 0, 360, 255, width, cv2.LINE_AA),
    }
    shapes[digit]()
    return np.dstack([np.full((280, 280, 3), 255, np.uint8) * (ink[..., None] > 0), ink])


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    return out.getvalue()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


BLANK = png(np.zeros((280, 280, 4), np.uint8))


def test_the_signature_takes_strings_and_gives_digits_and_what_the_network_saw(signatures):
    _, image_fn, _ = signatures
    _, inputs = image_fn.structured_input_signature
    assert list(inputs) == [IMAGE_INPUT_NAME]
    assert inputs[IMAGE_INPUT_NAME].dtype == tf.string
    assert inputs[IMAGE_INPUT_NAME].shape.as_list() == [None]
    outputs = image_fn.structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
        "probabilities": (tf.float32, [None, 10]),
        "digit": (tf.int64, [None]),
        "is_digit": (tf.bool, [None]),
        "digit_score": (tf.float32, [None]),
        "mnist_image": (tf.float32, [None, 28, 28, 1]),
    }


def test_its_answer_is_serving_defaults_on_the_image_it_shows(signatures):
    serve, image_fn, _ = signatures
    images = [png(canvas(d)) for d in "170"] + [BLANK]
    out = {k: v.numpy() for k, v in image_fn(image_bytes=tf.constant(images)).items()}
    assert out["mnist_image"].shape == (4, 28, 28, 1)
    same = serve(image=tf.constant(out["mnist_image"][:3]))
    np.testing.assert_allclose(out["probabilities"][:3], same["probabilities"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["digit"][:3], same["digit"].numpy())
    np.testing.assert_array_equal(out["is_digit"][:3], same["is_digit"].numpy())
    np.testing.assert_allclose(out["digit_score"][:3], same["digit_score"].numpy(), atol=1e-6)
    # No ink: no guess, and not a digit.
    assert out["digit"][3] == -1 and not out["is_digit"][3] and out["digit_score"][3] == 0
    assert not out["probabilities"][3].any() and not out["mnist_image"][3].any()
    for digit in out["mnist_image"][:3]:
        assert digit.max() == pytest.approx(1.0) and 0 <= digit.min()


def test_the_graph_holds_only_ops_tf_serving_runs(version):
    """tensorflow_model_server links TensorFlow's C++ ops and kernels (tensorflow/core:tensorflow
    in tensorflow_serving/model_servers/BUILD, server_lib) plus TensorFlow Text's and Decision
    Forests' ops (SUPPORTED_TENSORFLOW_OPS), and nothing of TensorFlow's Python layer. So each op
    of the graph and of every function in its library must be registered in TensorFlow's op
    registry (a custom op library, TF Addons say, registers its own, with names such as
    "Addons>ConnectedComponents"), have a CPU kernel, and not be one of the py_func family."""
    saved_model = saved_model_pb2.SavedModel.FromString((version / "saved_model.pb").read_bytes())
    (graph,) = saved_model.meta_graphs
    functions = {f.signature.name for f in graph.graph_def.library.function}
    ops = {node.op for node in graph.graph_def.node}
    for function in graph.graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    ops -= functions  # a call of a library function by name; its own ops are counted above
    assert {"DecodeImage", "StatelessWhile", "ResizeArea"} <= ops  # the image graph is there
    refused = {}
    for op in sorted(ops):
        devices = {k.device_type for k in kernels.get_registered_kernels_for_op(op).kernel}
        if op_def_registry.get(op) is None:
            refused[op] = "not a TensorFlow op"
        elif op in PYTHON_ONLY_OPS:
            refused[op] = "runs Python"
        elif not devices & {"CPU", "DEFAULT"}:
            refused[op] = f"no CPU kernel ({sorted(devices)})"
    assert refused == {}
    signatures = set(graph.signature_def) - {"__saved_model_init_op"}
    assert signatures == {SIGNATURE_NAME, IMAGE_SIGNATURE_NAME}


def test_warmup_replays_both_signatures(version):
    servable = load_servable(settings.MODEL_NAME, 1, version, batching=None)
    assert warm_up(servable, version) == 4


def test_warmup_takes_at_most_1000_records_as_tf_serving_does(version, tmp_path):
    # saved_model_warmup_util.cc: the 1001st record fails the load, the 1000th does not.
    servable = load_servable(settings.MODEL_NAME, 1, version, batching=None)
    record = next(iter(tf.data.TFRecordDataset(str(version / WARMUP_FILE)))).numpy()
    for count in (1000, 1001):
        (tmp_path / str(count) / WARMUP_FILE).parent.mkdir(parents=True)
        with tf.io.TFRecordWriter(str(tmp_path / str(count) / WARMUP_FILE)) as writer:
            for _ in range(count):
                writer.write(record)
    assert warm_up(servable, tmp_path / "1000") == 1000
    with pytest.raises(ServingError, match=r"exceeds the maximum \(1000\)"):
        warm_up(servable, tmp_path / "1001")


# ------------------------------------------------------------------ over REST


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory):
    """The local server in-process, batching on (a batch of strings is merged like any other)."""
    base = tmp_path_factory.mktemp("image_signature") / settings.MODEL_NAME
    shutil.copytree(tiny_model_base / "1", base / "1")
    batching = BatchingParameters(max_batch_size=16, batch_timeout_micros=20_000)
    configs = [ModelConfig(settings.MODEL_NAME, base)]
    with serving_in_process(configs, poll_seconds=0.2, batching=batching) as url:
        yield f"{url}/v1/models/{settings.MODEL_NAME}"


def predict(url: str, body: dict) -> requests.Response:
    return requests.post(f"{url}:predict", json=body, timeout=60)


def test_row_and_columnar_requests_answer_as_the_signature(server, signatures):
    _, image_fn, _ = signatures
    images = [png(canvas("7")), BLANK]
    expected = {k: v.numpy() for k, v in image_fn(image_bytes=tf.constant(images)).items()}
    rows = predict(
        server, {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [b64(i) for i in images]}
    )
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]
    assert [sorted(p) for p in predictions] == [
        ["digit", "digit_score", "is_digit", "mnist_image", "probabilities"]
    ] * 2
    assert [p["digit"] for p in predictions] == [int(expected["digit"][0]), -1]
    np.testing.assert_array_equal(
        np.array([p["mnist_image"] for p in predictions], np.float32), expected["mnist_image"]
    )
    named = {
        "signature_name": IMAGE_SIGNATURE_NAME,
        "instances": [{IMAGE_INPUT_NAME: b64(i)} for i in images],
    }
    assert predict(server, named).json() == rows.json()
    for inputs in ([b64(i) for i in images], {IMAGE_INPUT_NAME: [b64(i) for i in images]}):
        columns = predict(server, {"signature_name": IMAGE_SIGNATURE_NAME, "inputs": inputs})
        outputs = columns.json()["outputs"]
        assert outputs["digit"] == [p["digit"] for p in predictions]
        assert outputs["probabilities"] == [p["probabilities"] for p in predictions]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server):
    drawings = {d: png(canvas(d)) for d in "170"}
    alone = {
        d: predict(server, {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [b64(p)]}).json()
        for d, p in drawings.items()
    }
    start = threading.Barrier(6)
    answers = {}

    def client(key: str) -> None:
        start.wait()
        body = {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [b64(drawings[key[0]])]}
        answers[key] = predict(server, body).json()

    threads = [threading.Thread(target=client, args=(d + str(i),)) for d in "170" for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == sorted(d + str(i) for d in "170" for i in (1, 2))
    for key, answer in answers.items():
        (mine,), (own,) = answer["predictions"], alone[key[0]]["predictions"]
        assert (mine["digit"], mine["mnist_image"]) == (own["digit"], own["mnist_image"])
        np.testing.assert_allclose(mine["probabilities"], own["probabilities"], atol=1e-5)


@pytest.mark.parametrize(
    "instance, message",
    [
        (
            {"b64": "not base64!"},
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Unable to base64 decode",
        ),
        (
            {"b64": base64.b64encode(b"a text file, not an image").decode()},
            "Unknown image file format. One of JPEG, JPEG XL, PNG, GIF, BMP, WebP required.\n"
            "\t [[{{node map/while/decode_image/DecodeImage}}]]",
        ),
        (
            {"b64": base64.b64encode(png(canvas("1"))[:200]).decode()},  # a cut-off PNG
            None,  # libpng's words; a 400 all the same
        ),
    ],
)
def test_what_is_not_an_image_is_a_400_and_the_server_goes_on(server, instance, message):
    body = {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [instance]}
    response = predict(server, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    if message is not None:
        assert error == message
    assert "Traceback" not in error and "Graph execution error" not in error
    good = predict(server, {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [b64(BLANK)]})
    assert good.status_code == 200 and good.json()["predictions"][0]["digit"] == -1


def test_a_huge_image_is_refused_with_a_400(server):
    header = png(np.zeros((1, 1), np.uint8))
    huge = header[:16] + struct.pack(">II", 30_000, 30_000) + header[24:]
    body = {"signature_name": IMAGE_SIGNATURE_NAME, "instances": [b64(huge)]}
    response = predict(server, body)
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "assertion failed: [The image has more than 50,000,000 pixels: send a smaller one.]"
    )


def test_the_clients_crops_read_as_the_drawn_digits(server, signatures):
    serve, _, _ = signatures
    image = np.concatenate([canvas("1"), canvas("7")], axis=1)
    crops = [b64(encode_png(c)) for c in digit_crops(image)]
    body = {"signature_name": IMAGE_SIGNATURE_NAME, "instances": crops}
    predictions = predict(server, body).json()["predictions"]
    assert len(predictions) == 2
    for p in predictions:
        seen = np.array(p["mnist_image"], np.float32)[None]
        assert p["digit"] == int(serve(image=tf.constant(seen))["digit"][0])


def test_metadata_lists_both_signatures(server):
    metadata = requests.get(f"{server}/metadata", timeout=30).json()
    defs = metadata["metadata"]["signature_def"]["signature_def"]
    assert {SIGNATURE_NAME, IMAGE_SIGNATURE_NAME} <= set(defs)
    image = defs[IMAGE_SIGNATURE_NAME]
    assert image["method_name"] == "tensorflow/serving/predict"
    assert image["inputs"][IMAGE_INPUT_NAME]["dtype"] == "DT_STRING"
    assert {k: v["dtype"] for k, v in image["outputs"].items()} == {
        "probabilities": "DT_FLOAT",
        "digit": "DT_INT64",
        "is_digit": "DT_BOOL",
        "digit_score": "DT_FLOAT",
        "mnist_image": "DT_FLOAT",
    }


@pytest.mark.parametrize("shape", [(3,), (2, 3), (28, 28, 1), (1,), (4, 1, 2), (2, 0, 3), (0,), ()])
@pytest.mark.parametrize("single_line", [True, False])
def test_the_json_writer_builds_an_image_as_list_by_list(shape, single_line):
    # The answer's mnist_image is written a level at a time (fast); the text must be the one
    # written a list at a time, as TF Serving's PrettyWriter nests them.
    from serving import json_tensor

    def nested(shape, offset, indent):  # (text, next offset), one list at a time
        if not shape:
            return values[offset], offset + 1
        if shape[0] == 0:
            return "[]", offset
        parts = []
        for _ in range(shape[0]):
            text, offset = nested(shape[1:], offset, indent + 4)
            parts.append(text)
        if single_line:
            return "[" + ", ".join(parts) + "]", offset
        pad = " " * (indent + 4)
        return "[\n" + pad + (",\n" + pad).join(parts) + "\n" + " " * indent + "]", offset

    values = [str(i) for i in range(int(np.prod(shape)) + 5)]
    for indent in (4, 8, 12):
        written = json_tensor._write(shape, values, 2, None if single_line else indent)
        assert written == nested(shape, 2, indent)[0]
