"""The REST API: TF Serving's URLs, methods, status codes and JSON bodies, on serving.http_server.

Routing follows model_servers/http_server.cc (the dispatcher takes paths matching `(?i)/v1/.*`,
the Prometheus path is an exact match, anything else gets libevent's 404 page) and
http_rest_api_handler.cc / http_rest_api_util.cc (the URL patterns and the order of checks).

The event loop thread parses requests and writes answers. A lone request's model call runs on it
too; concurrent ones run on worker threads (or the batcher's), which hand the outputs back.
"""

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from serving import classify_regress, json_tensor
from serving.batching import can_batch
from serving.http_server import HttpServer, Request, Response
from serving.metrics import Metrics, model_label
from serving.status import HTTP_STATUS, ServingError, invalid
from serving.versions import Manager, Servable, Signature
from settings import SIGNATURE_NAME

log = logging.getLogger("serving")

# http_rest_api_util.cc kPredictionApiGegex / kModelStatusApiRegex; http_server.cc kPathRegex.
PREDICTION_RE = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
STATUS_RE = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
PATTERNS = {"POST": PREDICTION_RE, "GET": STATUS_RE}
DISPATCH_RE = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)

# libevent's evhttp_send_error() page, which TF Serving's HTTP server sends for unknown paths.
NOT_FOUND_PAGE = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n"
    b"<H1>Not Found</H1>\n</BODY></HTML>\n"
)
# TF Serving (libevent) has no body size limit; ours refuses bodies over this many bytes with 413
# (a 28x28 image is about 20 KB of JSON, a batch of 1,000 about 20 MB).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
INT64_MAX = 2**63 - 1
# TF Serving's --rest_api_num_threads default: 4 per CPU. Here: the threads that run model calls
# without batching (TensorFlow releases the GIL inside them).
DEFAULT_NUM_THREADS = 4 * (os.cpu_count() or 1)


@dataclass
class ModelCall:
    """A predict, classify or regress request checked and converted, its model call still to make;
    to_json() makes the response body of its outputs. Whoever finishes the call releases the
    servable."""

    servable: Servable
    signature: Signature
    arrays: dict[str, np.ndarray]
    to_json: Callable[[dict[str, np.ndarray]], str]


class RestServer(HttpServer):
    """The HTTP server with the manager and metrics at hand."""

    def __init__(
        self,
        address: tuple[str, int],
        manager: Manager,
        metrics: Metrics,
        prometheus_path: str | None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        num_threads: int = DEFAULT_NUM_THREADS,
    ):
        super().__init__(address, self.handle, max_body_bytes, _error_response)
        self.manager = manager
        self.metrics = metrics
        self.prometheus_path = prometheus_path
        self.executor = ThreadPoolExecutor(max_workers=num_threads, thread_name_prefix="model")

    def server_close(self) -> None:
        super().server_close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def handle(self, request: Request, respond: Callable[[Response], None]) -> None:
        """One request, on the loop thread: answered now, or by _model_done() after the model."""
        path = request.target.split("?", 1)[0]
        if self.prometheus_path is not None and path == self.prometheus_path:
            respond(Response(200, self.metrics.page().encode(), "text/plain"))
            return
        if not DISPATCH_RE.fullmatch(path):
            respond(Response(404, NOT_FOUND_PAGE, "text/html; charset=ISO-8859-1", close=True))
            return
        start = time.perf_counter()
        # Counted per model and status, as TF Serving counts predict/classify/regress requests.
        match = PREDICTION_RE.fullmatch(path) if request.method == "POST" else None

        def finish(code: str, output: str) -> None:
            respond(Response(HTTP_STATUS[code], output.encode()))
            if match:
                seconds = time.perf_counter() - start
                name = model_label(_decode(match.group(1)), self.manager.models)
                self.metrics.record(name, match.group(4).lower(), code, seconds)

        try:
            result = route(self.manager, request.method, path, request.body)
        except Exception as e:
            finish(*_failure(e, request.method, path))
            return
        if isinstance(result, str):
            finish("OK", result)
            return
        try:
            signature = result.signature
            if signature.batcher is not None and can_batch(result.arrays, signature.inputs):
                signature.batcher.submit(result.arrays, self._on_loop(result, finish))
            else:
                # Decided once the loop has read whatever else arrived with this request.
                self.loop.call_soon(self._run, result, finish)
        except Exception as e:  # refused by the batcher (queue full, batch too large)
            self._model_done(result, finish, None, e)

    def _run(self, call: ModelCall, finish: Callable) -> None:
        """A lone request runs on the loop thread: handing it to a worker and back costs two
        thread wake-ups (bench/RESULTS.md). With others waiting, a worker runs it, so that
        their parsing overlaps the model."""
        if self.waiting_connections() == 1:
            _call(call.signature, call.arrays, functools.partial(self._model_done, call, finish))
        else:
            self.executor.submit(_call, call.signature, call.arrays, self._on_loop(call, finish))

    def _on_loop(self, call: ModelCall, finish: Callable) -> Callable:
        """The done() a worker thread calls: it hands the outputs to the loop thread."""

        def done(outputs: dict | None, error: Exception | None) -> None:
            self.call_soon(self._model_done, call, finish, outputs, error)

        return done

    def _model_done(
        self, call: ModelCall, finish: Callable, outputs: dict | None, error: Exception | None
    ) -> None:
        self.manager.release(call.servable)
        try:
            if error is not None:
                raise error
            finish("OK", call.to_json(outputs))
        except Exception as e:
            finish(*_failure(e, "POST", "model call"))


def _call(signature: Signature, arrays: dict, done: Callable) -> None:
    try:
        outputs = signature.call(arrays)
    except Exception as e:
        done(None, e)
        return
    done(outputs, None)


def _failure(error: Exception, method: str, path: str) -> tuple[str, str]:
    """(code, JSON body) for a failed request; a bug of ours is logged, never shown."""
    if isinstance(error, ServingError):
        return error.code, json_tensor.error_json(error.message)
    log.error("Internal error serving %s %s", method, path, exc_info=error)
    return "INTERNAL", json_tensor.error_json("Internal error")


def _error_response(status: int, message: str) -> Response:
    return Response(status, json_tensor.error_json(message).encode(), close=True)


def route(manager: Manager, method: str, path: str, body: bytes) -> str | ModelCall:
    """HttpRestApiHandler::ProcessRequest(): the JSON body of the answer, a model call still to
    make (predict, classify, regress), or a ServingError."""
    pattern = PATTERNS.get(method)
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        raise invalid(f"Malformed request: {method} {path}")
    name = _decode(match.group(1) or "")
    version = _version(match.group(2))
    label = _decode(match.group(3)) if match.group(3) else None
    if not name:  # a GET of /v1/models; a POST's pattern always has a name
        raise invalid("Missing model name in request.")
    if version is not None and label is not None:
        # http_rest_api_util.cc FillModelSpecWithNameVersionAndLabel()
        raise invalid(
            f"Both model version ({version}) and model version label ({label}) cannot be supplied."
        )
    if method == "POST":
        api = match.group(4).lower()
        if api == "predict":
            return predict(manager, name, version, label, body)
        return classify_or_regress(manager, api, name, version, label, body)
    if match.group(4):
        return metadata(manager, name, version, label)
    return model_status(manager, name, version)


def _decode(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", errors="replace")


def _version(text: str | None) -> int | None:
    if not text:
        return None
    version = int(text)
    if version > INT64_MAX:
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return version


def predict(
    manager: Manager, name: str, version: int | None, label: str | None, body: bytes
) -> ModelCall:
    numeric = json_tensor.numeric_body(body)  # the common request, read in one go
    doc, too_deep, signature_name = None, False, ""
    if not numeric:
        try:
            doc = json_tensor.parse_json(body)
            signature_name = json_tensor.signature_name(doc)
        except json_tensor.TooDeep:
            too_deep, signature_name = True, _deep_signature_name(body)
    servable = manager.acquire(name, version, label)
    try:
        key = signature_name or SIGNATURE_NAME
        signature = servable.signatures.get(key)
        if signature is None:
            raise invalid(f'Serving signature name: "{key}" not found in signature def')
        if too_deep:
            # More dimensions than a tensor may have: TF Serving's Tensor::FromProto() fails.
            raise invalid("tensor parsing error: ", min(signature.inputs))
        converted = json_tensor.numeric_inputs(numeric, signature.inputs) if numeric else None
        if converted is None:
            doc = doc or json_tensor.parse_json(body)
            may_have_bools = b"true" in body or b"false" in body
            converted = json_tensor.predict_inputs(doc, signature.inputs, may_have_bools)
    except BaseException:
        manager.release(servable)
        raise
    arrays, fmt = converted
    return ModelCall(servable, signature, arrays, functools.partial(json_tensor.make_json, fmt=fmt))


_SIGNATURE_KEY = re.compile(rb'"signature_name"\s*:\s*"([^"\\]*)"')


def _deep_signature_name(body: bytes) -> str:
    """The signature a body too deep to parse names, read off its text."""
    match = _SIGNATURE_KEY.search(body)
    return match.group(1).decode("utf-8", errors="replace") if match else ""


def classify_or_regress(
    manager: Manager, api: str, name: str, version: int | None, label: str | None, body: bytes
) -> ModelCall:
    """ProcessClassifyRequest() / ProcessRegressRequest(): the request's examples, checked as TF
    Serving checks them, for the signature to run on."""
    doc = json_tensor.parse_json(body)
    signature_name = json_tensor.signature_name(doc)
    examples = json_tensor.examples_from_json(doc)
    servable = manager.acquire(name, version, label)
    try:
        key = signature_name or SIGNATURE_NAME
        classify_regress.check_signature(api, key, servable.signature_defs)
        signature = servable.signatures.get(key)
        if signature is None:  # in the MetaGraph but not callable, e.g. an init op
            raise invalid(f"No signature was found with the name: {key}")
    except BaseException:
        manager.release(servable)
        raise
    to_json = functools.partial(classify_regress.results_json, api, num_examples=len(examples))
    return ModelCall(servable, signature, {classify_regress.INPUTS: examples}, to_json)


def model_status(manager: Manager, name: str, version: int | None) -> str:
    """GetModelStatus. A label is not resolved there (get_model_status_impl.cc reads only
    model_spec.version), so /labels/<l> answers the status of every version, as TF Serving."""
    entries = [
        {
            "version": str(v),
            "state": s.state,
            "status": {"error_code": s.error_code, "error_message": s.error_message},
        }
        for v, s in manager.status(name, version)
    ]
    # MessageToJsonString(add_whitespace): one-space indentation.
    return json.dumps({"model_version_status": entries}, indent=1, ensure_ascii=False)


def metadata(manager: Manager, name: str, version: int | None, label: str | None) -> str:
    """GetModelMetadata, written as http_rest_api_util.cc ToJsonString() concatenates it."""
    servable = manager.acquire(name, version, label)
    try:
        spec = model_pb2.ModelSpec(name=name, signature_name="")
        spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap(
            signature_def=servable.signature_defs
        )
    finally:
        manager.release(servable)
    options = dict(
        preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=1
    )
    spec_json = json_format.MessageToJson(spec, **options)
    map_json = json_format.MessageToJson(signature_map, **options)
    return (
        '{\n"model_spec":' + spec_json + ',\n"metadata": {"signature_def": ' + map_json + "}\n}\n"
    )
