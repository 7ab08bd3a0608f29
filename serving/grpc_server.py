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

import asyncio
import functools
import logging
import os
import threading
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

import settings
from serving import classify_regress, tensor_proto
from serving.batching import can_batch
from serving.metrics import Metrics, model_label
from serving.status import ServingError, invalid
from serving.versions import Manager, Servable, Signature, servable_id

log = logging.getLogger("serving")

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
                f"Expects arg[{index}] to be {tensor_proto.type_string(expected)} but "
                f"{tensor_proto.type_string(array.dtype)} is provided"
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


def _key(spec) -> str:
    """The signature a model_spec names; without one, serving_default."""
    return spec.signature_name or settings.SIGNATURE_NAME


def classify_or_regress(api: str, manager: Manager, request):
    """TensorflowClassificationServiceImpl::Classify() / TensorflowRegressionServiceImpl::Regress():
    the result of a classify or regress signature run on the request's examples."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    servable = acquire(manager, request.model_spec)
    try:
        key = _key(request.model_spec)
        classify_regress.check_signature(api, key, servable.signature_defs)
        signature = servable.signatures.get(key)
        if signature is None:  # in the MetaGraph but not callable, e.g. an init op
            raise invalid(f"No signature was found with the name: {key}")
        examples = serialized_examples(request.input)
        outputs = signature.call({classify_regress.INPUTS: examples})
    finally:
        manager.release(servable)
    if api == "classify":
        response = classification_pb2.ClassificationResponse()
    else:
        response = regression_pb2.RegressionResponse()
    _fill_result(api, response.result, outputs, len(examples))
    _model_spec(response.model_spec, request.model_spec.name, key, servable.version)
    return response


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
    return np.array([context + example.SerializeToString() for example in examples], dtype=object)


def _fill_result(api: str, result, outputs: dict, count: int) -> None:
    """A ClassificationResult or RegressionResult of a signature's outputs on `count` examples."""
    if api == "classify":
        for example in classify_regress.classifications(outputs, count):
            entry = result.classifications.add()
            for label, score in example:
                entry.classes.add(label=_text(label), score=score)
    else:
        for value in classify_regress.regressions(outputs, count):
            result.regressions.add().value = value


def multi_inference(manager: Manager, request) -> inference_pb2.MultiInferenceResponse:
    """RunMultiInferenceWithServerCore(): the first task's model; each task a classify or
    regress signature over the same examples. (TF Serving runs their outputs in one session call;
    here each signature is called in turn, which answers the same.)"""
    spec = request.tasks[0].model_spec if request.tasks else predict_pb2.PredictRequest().model_spec
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
        kind = result.classification_result if api == "classify" else result.regression_result
        _fill_result(api, kind, output, len(examples))
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
        key = _key(task.model_spec)
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
        signature_map = get_model_metadata_pb2.SignatureDefMap(
            signature_def=servable.signature_defs
        )
    finally:
        manager.release(servable)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    _model_spec(response.model_spec, servable.name, "", servable.version)
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
    manager: Manager, read_models: Callable, timeout: float | None, request
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
        failed, waiting = [], False
        for name in names:
            try:
                states = dict(manager.status(name, None))
            except ServingError:  # no version found yet
                states = {}
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


def _model_spec(spec, name: str, signature_name: str, version: int) -> None:
    """MakeModelSpec()."""
    spec.name = name
    spec.signature_name = signature_name
    spec.version.value = version


def _join(names) -> str:
    return ",".join(sorted(names))


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- the services


class _Service:
    """What both services share: the manager, the metrics, and how an RPC is answered. Each RPC
    runs on the server's event loop; what may wait (a model call among others, a reload) runs on
    a worker thread, or in the batching queue, so that the loop keeps reading requests."""

    def __init__(self, manager: Manager, metrics: Metrics, pool: futures.ThreadPoolExecutor):
        self.manager = manager
        self.metrics = metrics
        self.pool = pool
        self.active = 0  # RPCs being answered

    async def _answer(self, work: Callable, request, context, api: str | None = None):
        """One RPC: its reply, or TF Serving's status; counted as TF Serving counts it."""
        start = time.perf_counter()
        self.active += 1
        try:
            response, code, message = await work(request), "OK", ""
        except ServingError as e:
            response, code, message = None, e.code, e.message
        except Exception as e:  # a bug of ours: logged, never shown
            log.error("Internal error serving gRPC %s", type(request).__name__, exc_info=e)
            response, code, message = None, "INTERNAL", "Internal error"
        finally:
            self.active -= 1
        if api is not None:
            name = model_label(request.model_spec.name, self.manager.models)
            self.metrics.record(name, api, code, time.perf_counter() - start, entrypoint="GRPC")
        if code != "OK":
            if len(message) > ERROR_MESSAGE_LIMIT:
                message = message[:ERROR_MESSAGE_LIMIT] + "...TRUNCATED"
            await context.abort(grpc.StatusCode[code], message)
        return response

    async def _on_worker(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)


def _worker_rpc(function: Callable, api: str | None = None) -> Callable:
    """An RPC answered by function(manager, request) on a worker thread; `api`: its metrics name."""

    async def rpc(self: _Service, request, context):
        work = functools.partial(self._on_worker, function, self.manager)
        return await self._answer(work, request, context, api)

    return rpc


class PredictionService(_Service, prediction_service_pb2_grpc.PredictionServiceServicer):
    async def Predict(self, request, context):
        return await self._answer(self._predict, request, context, "Predict")

    async def _predict(self, request) -> predict_pb2.PredictResponse:
        """RunPredict(): the inputs checked against the signature, the outputs asked for."""
        servable = acquire(self.manager, request.model_spec)
        try:
            key = _key(request.model_spec)
            proto = servable.signature_defs.get(key)
            signature = servable.signatures.get(key)
            if proto is None or signature is None:
                raise ServingError(
                    "FAILED_PRECONDITION", f'Serving signature key "{key}" not found.'
                )
            arrays = _inputs(proto, signature, request)
            aliases = _output_aliases(proto, request.output_filter)
            outputs = await self._model(signature, arrays)
        finally:
            self.manager.release(servable)
        response = predict_pb2.PredictResponse()
        _model_spec(response.model_spec, request.model_spec.name, key, servable.version)
        for alias in aliases:
            response.outputs[alias].CopyFrom(tensor_proto.to_proto(outputs[alias]))
        return response

    async def _model(self, signature: Signature, arrays: dict) -> dict:
        """The model call: through the version's batching queue where the inputs can join a
        batch; a lone request on the loop itself (handing it to a thread and back costs two
        thread wake-ups); among others, on a worker thread."""
        if signature.batcher is not None and can_batch(arrays, signature.inputs):
            loop = asyncio.get_running_loop()
            answer = loop.create_future()

            def done(outputs: dict | None, error: Exception | None) -> None:
                loop.call_soon_threadsafe(_settle, answer, outputs, error)

            signature.batcher.submit(arrays, done)
            return await answer
        if self.active == 1:
            return signature.call(arrays)
        return await self._on_worker(signature.call, arrays)

    Classify = _worker_rpc(functools.partial(classify_or_regress, "classify"), "Classify")
    Regress = _worker_rpc(functools.partial(classify_or_regress, "regress"), "Regress")
    MultiInference = _worker_rpc(multi_inference)
    GetModelMetadata = _worker_rpc(model_metadata)


def _settle(answer: asyncio.Future, outputs: dict | None, error: Exception | None) -> None:
    if answer.cancelled():
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(outputs)


class ModelService(_Service, model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: Manager, metrics: Metrics, pool, read_models: Callable):
        super().__init__(manager, metrics, pool)
        self.read_models = read_models

    GetModelStatus = _worker_rpc(model_status)

    async def HandleReloadConfigRequest(self, request, context):
        reload = functools.partial(reload_config, self.manager, self.read_models)
        work = functools.partial(self._on_worker, reload, context.time_remaining())
        return await self._answer(work, request, context)


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


class GrpcServer:
    """Both services on `addresses` (host:port, or unix:path), served by grpc.aio on an event
    loop thread of their own; `ports` are the ports bound (0 for a socket path). OSError if an
    address cannot be bound."""

    def __init__(
        self,
        addresses: list[str],
        manager: Manager,
        metrics: Metrics,
        read_models: Callable,
        max_threads: int = DEFAULT_MAX_THREADS,
        extra_arguments: str = "",
    ):
        self.pool = futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc")
        self.loop = asyncio.new_event_loop()
        services = (
            PredictionService(manager, metrics, self.pool),
            ModelService(manager, metrics, self.pool, read_models),
        )
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),  # a second server on a busy port fails, as TF Serving's
            *channel_arguments(extra_arguments),
        ]
        started: futures.Future = futures.Future()
        self.thread = threading.Thread(
            target=self._serve, args=(addresses, services, options, started), name="grpc-loop"
        )
        self.thread.daemon = True
        self.thread.start()
        self.ports = started.result()

    def _serve(self, addresses, services, options, started: futures.Future) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = self.loop.run_until_complete(self._start(addresses, services, options))
        except BaseException as e:
            started.set_exception(e)
            return
        started.set_result(self.ports)
        self.loop.run_forever()

    async def _start(self, addresses, services, options):
        server = grpc.aio.server(options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(services[0], server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(services[1], server)
        self.ports = []
        for address in addresses:
            try:
                self.ports.append(server.add_insecure_port(address))
            except RuntimeError as e:
                raise OSError(f"cannot listen on {address}: {e}") from None
        await server.start()
        return server

    def stop(self, grace: float = 1.0) -> None:
        """Finishes the RPCs in flight (for up to `grace` seconds), then stops."""
        stopping = asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop)
        stopping.result(timeout=grace + 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=False, cancel_futures=True)
