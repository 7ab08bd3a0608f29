"""The gRPC API: TF Serving's PredictionService and ModelService, on the manager REST uses.

The services, their checks and their messages follow tensorflow/serving: model_servers/
prediction_service_impl.cc and model_service_impl.cc, servables/tensorflow/predict_util.cc,
classifier.cc, regressor.cc, multi_inference.cc, get_model_metadata_impl.cc and
model_servers/get_model_status_impl.cc. Requests name their model in `model_spec` (a version, a
label, or neither for the latest), and every reply's `model_spec` names the version that answered.
A failed request ends with TF Serving's status code and message (longer ones cut at 1024
characters, as grpc_status_util.cc cuts them).

The same loaded versions, batching queues and metrics serve both APIs, so a hot swap is the same
event for a gRPC client as for a REST one.
"""

import logging
import os
import time
from collections.abc import Callable
from concurrent import futures

import grpc
import numpy as np
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

from serving import classify_regress, tensor_proto
from serving.batching import can_batch
from serving.metrics import Metrics
from serving.status import ServingError, invalid
from serving.versions import Manager, Servable, Signature, servable_id

log = logging.getLogger("serving")

DEFAULT_SIGNATURE = "serving_default"  # kDefaultServingSignatureDefKey
CLASSIFY_METHOD = "tensorflow/serving/classify"  # kClassifyMethodName
REGRESS_METHOD = "tensorflow/serving/regress"  # kRegressMethodName
ERROR_MESSAGE_LIMIT = 1024  # grpc_status_util.cc kErrorMessageLimit
# server.cc: builder.SetMaxMessageSize(INT32_MAX), both ways (gRPC's own default receives 4 MB).
MAX_MESSAGE_BYTES = 2**31 - 1
# Ours: how long a reload without a deadline waits for its new models (TF Serving: for ever).
RELOAD_WAIT_SECONDS = 600
# TF Serving's --grpc_max_threads default: 4 per CPU.
DEFAULT_MAX_THREADS = 4 * (os.cpu_count() or 1)


# ---------------------------------------------------------------- the requests, one function each


def acquire(manager: Manager, spec) -> Servable:
    """ServerCore::GetServableHandle(model_spec): by version, by label, or the latest."""
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return manager.acquire(spec.name, version, label)


def predict(manager: Manager, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """RunPredict(): the inputs checked against the signature, the outputs asked for."""
    servable = acquire(manager, request.model_spec)
    try:
        key = request.model_spec.signature_name or DEFAULT_SIGNATURE
        proto = servable.signature_defs.get(key)
        signature = servable.signatures.get(key)
        if proto is None or signature is None:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{key}" not found.')
        arrays = _inputs(proto, signature, request)
        aliases = _output_aliases(proto, request.output_filter)
        outputs = _run(signature, arrays)
    finally:
        manager.release(servable)
    response = predict_pb2.PredictResponse()
    _model_spec(response.model_spec, request.model_spec.name, key, servable.version)
    for alias in aliases:
        response.outputs[alias].CopyFrom(tensor_proto.to_proto(outputs[alias]))
    return response


def _inputs(proto, signature: Signature, request) -> dict[str, np.ndarray]:
    """PreProcessPrediction(): VerifyRequestInputsSize(), then each input read as a tensor."""
    sent, wanted = set(request.inputs), set(proto.inputs)
    if len(sent) > len(wanted) or (len(sent) < len(wanted) and not proto.defaults):
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{_join(sent)}}}) != len({{{_join(wanted)}}}). "
            f"Sent extra: {{{_join(sent - wanted)}}}. "
            f"Missing but required: {{{_join(wanted - sent)}}}."
        )
    arrays = {}
    for index, alias in enumerate(sorted(sent)):
        if alias not in wanted:
            raise invalid(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{_join(wanted)}}}."
            )
        try:
            array = tensor_proto.to_array(request.inputs[alias])
        except tensor_proto.Unreadable:
            raise invalid("tensor parsing error: ", alias) from None
        expected = signature.inputs[alias].dtype
        if array.dtype != expected:
            # DirectSession's check of a fed tensor against its placeholder.
            raise invalid(
                f"Expects arg[{index}] to be {_tf_type(expected)} but "
                f"{_tf_type(array.dtype)} is provided"
            )
        arrays[alias] = array
    return arrays


def _output_aliases(proto, output_filter) -> list[str]:
    aliases = []
    for alias in output_filter:
        if alias not in proto.outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{_join(proto.outputs)}}}."
            )
        if alias in aliases:
            raise invalid(f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    return aliases or sorted(proto.outputs)


def _run(signature: Signature, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model call, through the version's batching queue where the inputs can join a batch."""
    if signature.batcher is not None and can_batch(arrays, signature.inputs):
        return signature.batcher.run(arrays)
    return signature.call(arrays)


def classify(manager: Manager, request) -> classification_pb2.ClassificationResponse:
    """TensorflowClassificationServiceImpl::Classify()."""
    response = classification_pb2.ClassificationResponse()
    version, outputs, count = _run_examples(manager, request, "classify")
    _model_spec(response.model_spec, request.model_spec.name, _key(request), version)
    _fill_classifications(response.result, classify_regress.classifications(outputs, count))
    return response


def regress(manager: Manager, request) -> regression_pb2.RegressionResponse:
    """TensorflowRegressionServiceImpl::Regress()."""
    response = regression_pb2.RegressionResponse()
    version, outputs, count = _run_examples(manager, request, "regress")
    _model_spec(response.model_spec, request.model_spec.name, _key(request), version)
    for value in classify_regress.regressions(outputs, count):
        response.result.regressions.add().value = value
    return response


def _key(request) -> str:
    return request.model_spec.signature_name or DEFAULT_SIGNATURE


def _run_examples(manager: Manager, request, api: str) -> tuple[int, dict, int]:
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    servable = acquire(manager, request.model_spec)
    try:
        key = _key(request)
        classify_regress.check_signature(api, key, servable.signature_defs)
        signature = servable.signatures.get(key)
        if signature is None:  # in the MetaGraph but not callable, e.g. an init op
            raise invalid(f"No signature was found with the name: {key}")
        examples = serialized_examples(request.input)
        outputs = signature.call({classify_regress.INPUTS: examples})
    finally:
        manager.release(servable)
    return servable.version, outputs, len(examples)


def serialized_examples(input_proto) -> np.ndarray:
    """InputToSerializedExampleTensor(): one serialized tf.train.Example per example; with a
    context, the context's bytes before each example's, which parse as the two merged."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        context, examples = b"", input_proto.example_list.examples
    elif kind == "example_list_with_context":
        context = input_proto.example_list_with_context.context.SerializeToString()
        examples = input_proto.example_list_with_context.examples
    else:
        examples = []
    if not examples:
        raise invalid("Input is empty.")
    tensor = np.empty(len(examples), dtype=object)
    for i, example in enumerate(examples):
        tensor[i] = context + example.SerializeToString()
    return tensor


def _fill_classifications(result, classifications: list[list[tuple]]) -> None:
    for example in classifications:
        entry = result.classifications.add()
        for label, score in example:
            entry.classes.add(label=_text(label), score=score)


def multi_inference(manager: Manager, request) -> inference_pb2.MultiInferenceResponse:
    """RunMultiInferenceWithServerCore(): the first task's model; each task a classify or
    regress signature over the same examples. (TF Serving runs their outputs in one session call;
    here each signature is called in turn, which answers the same.)"""
    first = request.tasks[0].model_spec if request.tasks else None
    spec = first if first is not None else predict_pb2.PredictRequest().model_spec
    servable = acquire(manager, spec)
    try:
        checked = _check_tasks(request.tasks, servable)
        examples = serialized_examples(request.input)
        outputs = [
            servable.signatures[key].call({classify_regress.INPUTS: examples}) for key, _ in checked
        ]
    finally:
        manager.release(servable)
    response = inference_pb2.MultiInferenceResponse()
    for task, (key, api), output in zip(request.tasks, checked, outputs, strict=True):
        result = response.results.add()
        if api == "classify":
            classifications = classify_regress.classifications(output, len(examples))
            _fill_classifications(result.classification_result, classifications)
        else:
            for value in classify_regress.regressions(output, len(examples)):
                result.regression_result.regressions.add().value = value
        _model_spec(result.model_spec, task.model_spec.name, key, servable.version)
    return response


def _check_tasks(tasks, servable: Servable) -> list[tuple[str, str]]:
    """TensorFlowMultiInferenceRunner::Infer()'s checks: (signature, api) per task."""
    checked, model_name = [], ""
    for task in tasks:
        if not task.model_spec.name:
            raise invalid("Found ModelSpec with an empty model name.")
        if model_name and model_name != task.model_spec.name:
            raise invalid(
                "All ModelSpecs in a MultiInferenceRequest must access the same model name."
            )
        model_name = task.model_spec.name
        key = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if any(key == k for k, _ in checked):
            raise invalid(f"Duplicate evaluation of signature: {key}")
        if key not in servable.signature_defs or key not in servable.signatures:
            raise invalid(f"Requested signature not found in model graph: {key}")
        api = {CLASSIFY_METHOD: "classify", REGRESS_METHOD: "regress"}.get(task.method_name)
        if api is None:
            raise ServingError(
                "UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}"
            )
        classify_regress.check_signature(api, key, servable.signature_defs)
        checked.append((key, api))
    return checked


def model_metadata(manager: Manager, request) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataImpl::GetModelMetadata(): the version's SignatureDefs."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != "signature_def":
            raise invalid(f"Metadata field {field} is not supported")
    servable = acquire(manager, request.model_spec)
    try:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, proto in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(proto)
    finally:
        manager.release(servable)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata["signature_def"].Pack(signature_map)
    return response


def model_status(manager: Manager, request) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatusImpl::GetModelStatus(): every version's state, or the one asked for."""
    from tensorflow.core.protobuf import error_codes_pb2

    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state in manager.status(spec.name, version):
        entry = response.model_version_status.add(version=number)
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.error_code = error_codes_pb2.Code.Value(state.error_code)
        entry.status.error_message = state.error_message
    return response


def reload_config(
    manager: Manager, read_models: Callable, request, timeout: float | None = None
) -> model_management_pb2.ReloadConfigResponse:
    """ModelServiceImpl::HandleReloadConfigRequest(): a new model_config_list, at once."""
    config = request.config
    if config.WhichOneof("config") != "model_config_list":
        raise invalid(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported"
        )
    for index, entry in enumerate(config.model_config_list.config):
        log.info("Config entry %d: name %s, path %s", index, entry.name, entry.base_path)
    try:
        models = read_models(config)
    except ValueError as e:
        raise invalid(str(e)) from None
    new = [m.name for m in models if m.name not in manager.models]
    manager.reload_config(models)
    _wait_until_available(manager, new, timeout)
    response = model_management_pb2.ReloadConfigResponse()
    for name in request.metric_names:
        # Metric increases come from TensorFlow's metric registry, which is not kept here.
        response.metric.add(name=name, int64_value_increase=0)
    return response


def _wait_until_available(manager: Manager, names: list[str], timeout: float | None) -> None:
    """ServerCore::WaitUntilModelsAvailable(): a reload answers once its new models serve, or
    once their latest version has failed (or, ours, when the caller's deadline has passed)."""
    deadline = time.monotonic() + (timeout if timeout is not None else RELOAD_WAIT_SECONDS)
    while time.monotonic() < deadline:
        failed = []
        waiting = False
        for name in names:
            states = dict(manager.status(name, None)) if manager.models[name].versions else {}
            if any(s.state == "AVAILABLE" for s in states.values()):
                continue
            latest = states.get(max(states)) if states else None
            if latest is not None and latest.state == "END" and latest.error_code != "OK":
                failed.append(
                    f"{{{servable_id(name, max(states))} due to error: "
                    f"{latest.error_code}: {latest.error_message}}}, "
                )
            else:
                waiting = True
        if not waiting:
            break
        time.sleep(0.05)
    else:
        raise ServingError("DEADLINE_EXCEEDED", "Deadline Exceeded")
    if failed:
        raise ServingError(
            "UNKNOWN", f"{len(failed)} model(s) did not become available: {{{''.join(failed)}}}"
        )


def _model_spec(spec, name: str, signature_name: str | None, version: int) -> None:
    """MakeModelSpec()."""
    spec.name = name
    if signature_name is not None:
        spec.signature_name = signature_name
    spec.version.value = version


def _join(names) -> str:
    return ",".join(sorted(names))


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _tf_type(dtype: np.dtype) -> str:
    """DataTypeString(): float, double, int32, string, ..."""
    import tensorflow as tf

    enum = tf.as_dtype(dtype if dtype != np.object_ else tf.string).as_datatype_enum
    return tensor_proto.dtype_name(enum).removeprefix("DT_").lower()


# ---------------------------------------------------------------- the services


class _Service:
    def __init__(self, manager: Manager, metrics: Metrics):
        self.manager = manager
        self.metrics = metrics

    def _answer(self, work: Callable, request, context, api: str | None = None):
        """One RPC: its reply, or TF Serving's status; counted as TF Serving counts it."""
        start = time.perf_counter()
        try:
            response, code, message = work(self.manager, request), "OK", ""
        except ServingError as e:
            response, code, message = None, e.code, e.message
        except Exception as e:  # a bug of ours: logged, never shown
            log.error("Internal error serving gRPC %s", api or work.__name__, exc_info=e)
            response, code, message = None, "INTERNAL", "Internal error"
        if api is not None:
            name = request.model_spec.name
            self.metrics.record(
                name if name in self.manager.models else "",
                api,
                code,
                time.perf_counter() - start,
                entrypoint="GRPC",
            )
        if code != "OK":
            if len(message) > ERROR_MESSAGE_LIMIT:
                message = message[:ERROR_MESSAGE_LIMIT] + "...TRUNCATED"
            context.abort(grpc.StatusCode[code], message)
        return response


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(self, request, context):
        return self._answer(predict, request, context, "Predict")

    def Classify(self, request, context):
        return self._answer(classify, request, context, "Classify")

    def Regress(self, request, context):
        return self._answer(regress, request, context, "Regress")

    def MultiInference(self, request, context):
        return self._answer(multi_inference, request, context)

    def GetModelMetadata(self, request, context):
        return self._answer(model_metadata, request, context)


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: Manager, metrics: Metrics, read_models: Callable):
        super().__init__(manager, metrics)
        self.read_models = read_models

    def GetModelStatus(self, request, context):
        return self._answer(model_status, request, context)

    def HandleReloadConfigRequest(self, request, context):
        def reload(manager: Manager, request):
            return reload_config(manager, self.read_models, request, context.time_remaining())

        return self._answer(reload, request, context)


def channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """--grpc_channel_arguments: `key=value,...`; a value that reads as an int is passed as one."""
    arguments = []
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            arguments.append((key, int(value)))
        except ValueError:
            arguments.append((key, value))
    return arguments


def start_grpc_server(
    addresses: list[str],
    manager: Manager,
    metrics: Metrics,
    read_models: Callable,
    max_threads: int = DEFAULT_MAX_THREADS,
    extra_arguments: str = "",
) -> tuple[grpc.Server, list[int]]:
    """Both services on `addresses` (host:port, or unix:path); returns the server and the ports
    bound (0 for a socket path). OSError if an address cannot be bound."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),  # a second server on a busy port fails, as TF Serving's does
        *channel_arguments(extra_arguments),
    ]
    pool = futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc")
    server = grpc.server(pool, options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager, metrics, read_models), server
    )
    ports = []
    for address in addresses:
        try:
            ports.append(server.add_insecure_port(address))
        except RuntimeError as e:
            raise OSError(f"cannot listen on {address}: {e}") from None
    server.start()
    return server, ports
