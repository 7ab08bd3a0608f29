"""The REST API: TF Serving's URLs, methods, status codes and JSON bodies over http.server.

Routing follows model_servers/http_server.cc (the dispatcher takes paths matching `(?i)/v1/.*`,
the Prometheus path is an exact match, anything else gets libevent's 404 page) and
http_rest_api_handler.cc / http_rest_api_util.cc (the URL patterns and the order of checks).
"""

import json
import logging
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

from serving import json_tensor
from serving.metrics import Metrics
from serving.status import HTTP_STATUS, ServingError, invalid
from serving.versions import Manager

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


class RestServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection, keep-alive, the manager and metrics at hand."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when many clients connect at once.
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        address: tuple[str, int],
        manager: Manager,
        metrics: Metrics,
        prometheus_path: str | None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.manager = manager
        self.metrics = metrics
        self.prometheus_path = prometheus_path
        self.max_body_bytes = max_body_bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = 60  # seconds a connection may sit idle or send a body slowly before it is closed
    server_version = "TensorFlowServingLocal"
    server: RestServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:
        pass  # no access log on stderr, as TF Serving

    def parse_request(self) -> bool:
        """The request line and headers, read lean: http.server's email-based header parser
        costs more than the JSON of a 28x28 image. Headers land in a dict, names lower-cased."""
        self.command, self.request_version = None, "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(400, f"Bad request version or syntax ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        self.headers = headers = {}
        for _ in range(100):  # http.client's limit on the number of headers
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = str(line, "iso-8859-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            self.send_error(431, "Too many headers")
            return False
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = connection == "close"
        else:
            self.close_connection = connection != "keep-alive"
        if (
            headers.get("expect", "").lower() == "100-continue"
            and self.request_version == "HTTP/1.1"
        ):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it
        return True

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if self.server.prometheus_path is not None and path == self.server.prometheus_path:
            self._send(200, self.server.metrics.page().encode(), "text/plain")
            return
        if not DISPATCH_RE.fullmatch(path):
            self._send(404, NOT_FOUND_PAGE, "text/html; charset=ISO-8859-1", close=True)
            return
        start = time.perf_counter()
        try:
            output = route(self.server.manager, self.command, path, body)
            code = "OK"
        except ServingError as e:
            code, output = e.code, json_tensor.error_json(e.message)
        except Exception:  # a bug of ours: logged here, never shown to the client
            log.exception("Internal error serving %s %s", self.command, path)
            code, output = "INTERNAL", json_tensor.error_json("Internal error")
        self._send(HTTP_STATUS[code], output.encode(), "application/json")
        # Counted per model and status, as TF Serving counts predict/classify/regress requests.
        match = PREDICTION_RE.fullmatch(path) if self.command == "POST" else None
        if match:
            api = match.group(4).lower()
            self.server.metrics.record(
                _decode(match.group(1)), api, code, time.perf_counter() - start
            )

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering a body we refuse."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            try:
                return self._read_chunked()
            except ValueError:
                message = json_tensor.error_json("Invalid chunked transfer encoding")
                self._send(400, message.encode(), close=True)
                return None
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            self._send(400, json_tensor.error_json("Invalid Content-Length").encode(), close=True)
            return None
        if length > self.server.max_body_bytes:
            self._too_large(length)
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > self.server.max_body_bytes:
                self._too_large(total)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _too_large(self, size: int) -> None:
        message = (
            f"Request body of {size} bytes is larger than the limit of "
            f"{self.server.max_body_bytes} bytes"
        )
        self._send(413, json_tensor.error_json(message).encode(), close=True)

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", close: bool = False
    ) -> None:
        # One write for head and body: no Nagle/delayed-ACK stall between them.
        reason = self.responses.get(status, ("",))[0]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if close:
            head += "Connection: close\r\n"
            self.close_connection = True
        payload = head.encode() + b"\r\n" + (b"" if self.command == "HEAD" else body)
        try:
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client went away; nothing to tell it


def route(manager: Manager, method: str, path: str, body: bytes) -> str:
    """HttpRestApiHandler::ProcessRequest(): the JSON body of the answer, or a ServingError."""
    malformed = invalid(f"Malformed request: {method} {path}")
    if method == "POST":
        match = PREDICTION_RE.fullmatch(path)
    elif method == "GET":
        match = STATUS_RE.fullmatch(path)
    else:
        raise malformed
    if match is None:
        raise malformed
    name = _decode(match.group(1) or "")
    version = _version(match.group(2))
    label = _decode(match.group(3)) if match.group(3) else None
    if method == "POST":
        api = match.group(4).lower()
        _check_version_and_label(version, label)
        if api == "predict":
            return predict(manager, name, version, label, body)
        return classify_or_regress(manager, api, name, version, label, body)
    if not name:
        raise invalid("Missing model name in request.")
    _check_version_and_label(version, label)
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


def _check_version_and_label(version: int | None, label: str | None) -> None:
    # http_rest_api_util.cc FillModelSpecWithNameVersionAndLabel()
    if version is not None and label is not None:
        raise invalid(
            f"Both model version ({version}) and model version label ({label}) cannot be supplied."
        )


def predict(
    manager: Manager, name: str, version: int | None, label: str | None, body: bytes
) -> str:
    doc = json_tensor.parse_json(body)
    signature_name = json_tensor.signature_name(doc)
    servable = manager.acquire(name, version, label)
    try:
        key = signature_name or "serving_default"
        signature = servable.signatures.get(key)
        if signature is None:
            raise invalid(f'Serving signature name: "{key}" not found in signature def')
        may_have_bools = b"true" in body or b"false" in body
        arrays, fmt = json_tensor.predict_inputs(doc, signature.inputs, may_have_bools)
        outputs = signature.run(arrays)
    finally:
        manager.release(servable)
    return json_tensor.make_json(outputs, fmt)


def classify_or_regress(
    manager: Manager, api: str, name: str, version: int | None, label: str | None, body: bytes
) -> str:
    """Classify/Regress: checks as TF Serving makes them, down to the signature's shape."""
    doc = json_tensor.parse_json(body)
    signature_name = json_tensor.signature_name(doc)
    json_tensor.check_examples_request(doc)
    servable = manager.acquire(name, version, label)
    try:
        key = signature_name or "serving_default"
        if key not in servable.signature_defs:
            # classifier.cc / regressor.cc GetClassificationSignatureDef()
            raise invalid(f"No signature was found with the name: {key}")
        proto = servable.signature_defs[key]
        _check_classify_regress_signature(api, proto)
    finally:
        manager.release(servable)
    # A real classify/regress signature takes serialized tf.Examples; our models have none.
    raise ServingError("UNIMPLEMENTED", f"The local server does not run {api} signatures")


def _check_classify_regress_signature(api: str, proto) -> None:
    """PreProcessClassification() / PreProcessRegression() with the method-name check off."""
    from google.protobuf import text_format

    if len(proto.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if api == "classify":
        if len(proto.outputs) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(proto.outputs)}")
        if "inputs" not in proto.inputs:
            raise invalid(
                "No classification inputs found in SignatureDef: ",
                text_format.MessageToString(proto),
            )
        if "classes" not in proto.outputs and "scores" not in proto.outputs:
            raise invalid(
                'Expected classification signature outputs to contain at least one of "classes" '
                'or "scores". Signature was: ',
                text_format.MessageToString(proto),
            )
        return
    if len(proto.outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if "inputs" not in proto.inputs:
        raise invalid(
            "No regression inputs found in SignatureDef: ", text_format.MessageToString(proto)
        )
    if "outputs" not in proto.outputs:
        raise invalid(
            "No regression outputs found in SignatureDef: ", text_format.MessageToString(proto)
        )


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
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, proto in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(proto)
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
