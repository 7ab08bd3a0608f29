"""Model versions as TF Serving manages them: poll, load, warm up, serve, unload; labels.

Each model's base path is polled; children whose names parse as numbers are versions (`00000123`
is version 123, loaded from that folder). The version policy says which are aspired, and TF
Serving's AvailabilityPreservingPolicy decides the order: a new version is loaded (and warmed up)
before an old one is unloaded, and an old one is unloaded only once its in-flight requests are
done. States and messages follow core/ and model_servers/server_core.cc.
"""

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from serving.batching import Batcher
from serving.config import BatchingParameters, ModelConfig
from serving.json_tensor import TensorSpec
from serving.status import ServingError, invalid, not_found
from settings import SIGNATURE_NAME

log = logging.getLogger("serving")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # saved_model_warmup_util.cc kMaxNumRecords


@dataclass
class Signature:
    """One SignatureDef of a loaded version, callable on numpy arrays."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    proto: object  # the SignatureDef, for metadata and classify/regress messages
    function: Callable
    batcher: Batcher | None = None
    graph_call: Callable | None = None  # see graph_call(); None: always call `function`
    # A TF1 graph takes a feed of any shape, as TF Serving's Session::Run() does: a placeholder's
    # declared shape is not checked. A TF2 function's signature checks it.
    feeds_any_shape: bool = False

    def call(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        for name, array in arrays.items():
            expected = None if self.feeds_any_shape else self.inputs[name].shape
            if expected is not None and (
                array.ndim != len(expected)
                or any(e not in (-1, a) for e, a in zip(expected, array.shape, strict=True))
            ):
                # TensorShape.assert_is_compatible_with()'s text; the call would refuse it too.
                wanted = tuple(None if e == -1 else e for e in expected)
                raise invalid(f"Shapes {array.shape} and {wanted} are incompatible")
        try:
            # Tensors, not arrays: the function converts numpy arrays itself, more slowly.
            tensors = {k: tf.constant(a) for k, a in arrays.items()}
            if self.graph_call is not None and all(
                a.dtype == self.inputs[k].dtype for k, a in arrays.items()
            ):
                results = self.graph_call(*tensors.values())
            else:  # the signature's own checks and messages decide
                results = self.function(**tensors)
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
            # The tensor reached the model and TensorFlow refused it: its own message, 400.
            raise invalid(_tf_message(e)) from None
        except tf.errors.OpError as e:
            raise ServingError(_code_name(e.error_code), _tf_message(e)) from None
        return {name: tensor.numpy() for name, tensor in results.items()}


def _tf_message(error: Exception) -> str:
    """TensorFlow's message as its C++ runtime gives it, which is what TF Serving answers: without
    the Python stack that eager execution puts before a failed node's message (the server's file
    paths, which are no business of a client's) and without the eager op name after it."""
    message = getattr(error, "message", None) or str(error)
    return _EAGER_OP.sub("", _GRAPH_STACK.sub("", message, count=1))


# atomic_function.py InterpolateRuntimeError.interpolate(): a header, then per node its
# traceback.format_list() frames, then the message; core._status_to_exception(): " [Op:...]".
_GRAPH_STACK = re.compile(
    r"\AGraph execution error:\n\n"
    r"(?:Detected at node [^\n]*\n|<stack traces unavailable>\n|  File [^\n]*\n|    [^\n]*\n|\n)*"
)
_EAGER_OP = re.compile(r" \[Op:[^\]\n]*\](?: name: [^\n]*)?\Z")


@dataclass
class Servable:
    """A loaded version: its signatures and the count of requests using it."""

    name: str
    version: int
    signatures: dict[str, Signature]
    signature_defs: object = None  # every SignatureDef of the MetaGraph, as metadata lists them
    keepalive: object = None  # the loaded SavedModel, which its functions need alive
    inflight: int = 0

    def stop(self) -> None:
        for signature in self.signatures.values():
            if signature.batcher is not None:
                signature.batcher.stop()


@dataclass
class VersionState:
    """What get_model_status reports for one version."""

    state: str = "START"  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None
    folder: tuple | None = None  # a failed load: the identity of the folder that failed


@dataclass
class Model:
    config: ModelConfig
    versions: dict[int, VersionState] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    aspired: dict[int, Path] = field(default_factory=dict)  # version -> its folder


def servable_id(name: str, version: int) -> str:
    return f"{{name: {name} version: {version}}}"


class Manager:
    """All served models: the poll loop, the servable lookups requests make, and the status."""

    def __init__(
        self,
        models: list[ModelConfig],
        poll_seconds: float = 1.0,
        batching: BatchingParameters | None = None,
        allow_labels_for_unavailable: bool = False,
        max_load_retries: int = 5,
        load_retry_interval: float = 60.0,
        loader: Callable[[str, int, Path, BatchingParameters | None], Servable] | None = None,
    ):
        self.models: dict[str, Model] = {m.name: Model(m) for m in models}
        self.poll_seconds = poll_seconds
        self.batching = batching
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self.max_load_retries = max_load_retries
        self.load_retry_interval = load_retry_interval
        self.loader = loader or load_servable
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.set_labels(models)

    # ------------------------------------------------------------ config and labels

    def set_labels(self, models: list[ModelConfig]) -> None:
        """ServerCore::UpdateModelVersionLabelMap(): all labels or none (ServingError)."""
        new_labels: dict[str, dict[str, int]] = {}
        with self._lock:
            for config in models:
                model = self.models.get(config.name)
                old = model.labels if model else {}
                for label, version in config.labels.items():
                    allow = self.allow_labels_for_unavailable and old.get(label, version) == version
                    state = model.versions.get(version) if model else None
                    if not allow and (state is None or state.state != "AVAILABLE"):
                        raise ServingError(
                            "FAILED_PRECONDITION",
                            f"Request to assign label to version {version} of model "
                            f"{config.name}, which is not currently available for inference",
                        )
                    new_labels.setdefault(config.name, {})[label] = version
            for name, model in self.models.items():
                model.labels = new_labels.get(name, {})

    def reload_config(self, models: list[ModelConfig]) -> None:
        """A re-read config: labels first (a bad label rejects the whole reload), then models."""
        self.set_labels(models)
        with self._lock:
            new = {m.name: m for m in models}
            for name, model in list(self.models.items()):
                if name not in new:
                    model.config.policy, model.config.versions = "specific", ()
            for name, config in new.items():
                if name in self.models:
                    self.models[name].config = config
                else:
                    self.models[name] = Model(config)
                    log.info("Adding model: %s", name)

    # ------------------------------------------------------------ the poll loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="version-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            servables = [s.servable for m in self.models.values() for s in m.versions.values()]
        for servable in filter(None, servables):
            servable.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # the poll loop must outlive any one bad poll
                log.exception("File-system polling failed")

    def poll(self) -> None:
        """One poll of every model: find versions, then load and unload until settled."""
        for model in list(self.models.values()):
            model.aspired = self._aspired_versions(model)
            # Again after each action: a version that just failed gives its place to the next.
            while not self._stop.is_set() and self._next_action(model):
                model.aspired = self._aspired_versions(model)

    def _aspired_versions(self, model: Model) -> dict[int, Path]:
        """The versions the policy asks for. A version that failed to load is left out while its
        folder is the one that failed, so it takes none of the latest-N places; a folder put in
        its place (a new export of the same number, or the same one removed and put back) is
        loaded again, as TF Serving forgets a version whose folder went away."""
        config = model.config
        found = version_folders(config.base_path)
        if not found:
            log.warning(
                "No versions of servable %s found under base path %s",
                config.name,
                config.base_path,
            )
        with self._lock:
            for version, path in list(found.items()):
                state = model.versions.get(version)
                if state is None or state.folder is None:
                    continue
                if state.folder == folder_identity(path):
                    del found[version]
                else:
                    log.info(
                        "Version %d of %s is a new folder since it failed to load: loading it",
                        version,
                        config.name,
                    )
                    state.folder = None
                    state.error_code, state.error_message = "OK", ""
        if config.policy == "latest":
            return {v: found[v] for v in sorted(found)[-config.num_versions :]}
        wanted = found if config.policy == "all" else config.versions
        return {v: path for v, path in found.items() if v in wanted}

    def _next_action(self, model: Model) -> bool:
        """AvailabilityPreservingPolicy::GetNextAction(), then do it. False: nothing to do."""
        with self._lock:
            states = dict(model.versions)
        serving = {v for v, s in states.items() if s.state == "AVAILABLE"}
        aspired_serving = bool(serving & model.aspired.keys())
        unaspired = sorted(serving - model.aspired.keys())
        if unaspired and (not model.aspired or aspired_serving or len(unaspired) > 1):
            self._unload(model, unaspired[0])
            return True
        # A version that was unloaded cleanly may be aspired again; a failed one is not retried.
        new = [
            v
            for v in model.aspired
            if v not in states or (states[v].state == "END" and states[v].error_code == "OK")
        ]
        if new:
            self._load(model, max(new))
        return bool(new)

    def _load(self, model: Model, version: int) -> None:
        name = model.config.name
        path = model.aspired[version]
        sid = servable_id(name, version)
        with self._lock:
            model.versions[version] = VersionState("LOADING")
        log.info("Loading servable version %s", sid)
        attempt = 0
        while True:
            try:
                servable = self.loader(name, version, path, self.batching)
                break
            except Exception as e:
                code, message = _error_code(e)
                if attempt >= self.max_load_retries or self._stop.is_set():
                    log.error("Loading servable: %s failed: %s: %s", sid, code, message)
                    with self._lock:
                        model.versions[version] = VersionState(
                            "END", code, message, folder=folder_identity(path)
                        )
                    return
                attempt += 1
                log.warning(
                    "Loading servable: %s failed (attempt %d, retrying in %gs): %s",
                    sid,
                    attempt,
                    self.load_retry_interval,
                    message,
                )
                if self._stop.wait(self.load_retry_interval):
                    return
        with self._lock:
            model.versions[version] = VersionState("AVAILABLE", servable=servable)
        log.info("Successfully loaded servable version %s", sid)

    def _unload(self, model: Model, version: int) -> None:
        with self._lock:
            state = model.versions[version]
            state.state = "UNLOADING"
            servable = state.servable
        log.info("Unloading servable version %s", servable_id(model.config.name, version))
        threading.Thread(
            target=self._finish_unload, args=(model, version, servable), daemon=True
        ).start()

    def _finish_unload(self, model: Model, version: int, servable: Servable) -> None:
        with self._lock:
            # In-flight requests finish on this version before it goes.
            while servable.inflight:
                self._released.wait()
            model.versions[version] = VersionState("END")
        servable.stop()
        log.info("Done unloading servable version %s", servable_id(model.config.name, version))

    # ------------------------------------------------------------ what requests use

    def acquire(self, name: str, version: int | None, label: str | None) -> Servable:
        """ServerCore::GetServableHandle(): the servable a request names, held until release()."""
        with self._lock:
            model = self.models.get(name)
            if label is not None:
                if model is None or label not in model.labels:
                    raise invalid("Unrecognized servable version label: ", label)
                version = model.labels[label]
            if version is None:
                states = model.versions.items() if model else ()
                version = max((v for v, s in states if s.state == "AVAILABLE"), default=None)
                if version is None:
                    raise not_found(f"Servable not found for request: Latest({name})")
            state = model.versions.get(version) if model else None
            if state is None or state.state != "AVAILABLE":
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            state.servable.inflight += 1
            return state.servable

    def release(self, servable: Servable) -> None:
        with self._lock:
            servable.inflight -= 1
            if not servable.inflight:
                self._released.notify_all()

    def status(self, name: str, version: int | None) -> list[tuple[int, VersionState]]:
        """GetModelStatusImpl: (version, state) pairs, highest version first."""
        with self._lock:
            model = self.models.get(name)
            states = dict(model.versions) if model else {}
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [(version, states[version])]
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        return sorted(states.items(), reverse=True)


# absl::SimpleAtoi(), which FileSystemStoragePathSource parses child names with: ASCII spaces
# around, a sign, decimal digits.
_VERSION_NAME = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*")


def version_folders(base_path: Path) -> dict[int, Path]:
    """The versions under a base path and the folder each is loaded from.

    As file_system_storage_path_source.cc: a child is a version when its name parses as an
    int64 (`00000123` is 123); ours also wants it non-negative, a version a URL can name. Of
    children naming one version (`1`, `001`) the last in name order wins, with a warning."""
    try:
        children = sorted(base_path.iterdir())
    except OSError:
        return {}
    found: dict[int, Path] = {}
    for child in children:
        match = _VERSION_NAME.fullmatch(child.name)
        if match is None or not 0 <= int(match.group(1)) < 2**63:
            continue
        version = int(match.group(1))
        if version in found:
            log.warning(
                "Duplicate version directories detected. Version %d will be loaded from %s, "
                "%s will be ignored.",
                version,
                child.name,
                found[version].name,
            )
        found[version] = child
    return found


def folder_identity(path: Path) -> tuple:
    """What tells a version's folder from another one put in its place: the exporter renames a
    new folder into place, which gives it a new inode; a copy also has a new change time."""
    try:
        info = path.stat()
    except OSError:
        return ()  # gone: whatever comes back in its place is new
    return info.st_dev, info.st_ino, info.st_ctime_ns


def _error_code(error: Exception) -> tuple[str, str]:
    if isinstance(error, ServingError):
        return error.code, error.message
    import tensorflow as tf

    if isinstance(error, tf.errors.OpError):
        return _code_name(error.error_code), error.message
    if isinstance(error, OSError):
        return "NOT_FOUND", str(error)
    return "UNKNOWN", f"{type(error).__name__}: {error}"


def _code_name(code: int) -> str:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Name(code)


# ---------------------------------------------------------------- loading one version


def load_servable(
    name: str, version: int, path: Path, batching: BatchingParameters | None
) -> Servable:
    """Loads a SavedModel version, warms it up from its warmup file, and returns it."""
    metagraph, tf1 = read_metagraph(path)
    loaded = _load(path, tf1)
    signatures = {}
    for key, proto in metagraph.signature_def.items():
        if key not in loaded.signatures:
            continue  # e.g. __saved_model_init_op: listed in metadata, not callable
        function = loaded.signatures[key]
        signatures[key] = Signature(
            name=key,
            inputs={k: _spec(s) for k, s in function.structured_input_signature[1].items()},
            outputs={k: _spec(s) for k, s in function.structured_outputs.items()},
            proto=proto,
            function=function,
            graph_call=graph_call(function),
            feeds_any_shape=tf1,
        )
    servable = Servable(name, version, signatures, metagraph.signature_def, loaded)
    warm_up(servable, path)
    if batching is not None:
        for signature in signatures.values():
            signature.batcher = Batcher(signature.call, batching, f"{name}-{version}")
    return servable


def read_metagraph(path: Path) -> tuple[object, bool]:
    """The version's `serve` MetaGraphDef, and whether it is a TF1 SavedModel; ServingError with
    TF Serving's message if there is none."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        raise ServingError(
            "NOT_FOUND",
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        ) from None
    except Exception:
        raise ServingError(
            "DATA_LOSS", f"Can't parse {path / 'saved_model.pb'} as binary proto"
        ) from None
    metagraphs = [m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags]
    if not metagraphs:
        raise ServingError(
            "NOT_FOUND",
            "Could not find meta graph def matching supplied tags: { serve }. To inspect "
            "available tag-sets in the SavedModel, please use the SavedModel CLI: "
            "`saved_model_cli`",
        )
    # tf.saved_model.load()'s own test: without an object graph it is a TF1 SavedModel, whose
    # signatures are pruned graphs (load_v1_in_v2) rather than traced functions.
    tf1 = not (len(saved_model.meta_graphs) == 1 and metagraphs[0].HasField("object_graph_def"))
    return metagraphs[0], tf1


def _load(path: Path, tf1: bool):
    import tensorflow as tf

    tf_log = tf.get_logger()
    level = tf_log.level
    # Loading a TF1 SavedModel warns, per signature and variable, about training APIs.
    tf_log.setLevel(logging.ERROR)
    try:
        return tf.saved_model.load(str(path), tags=["serve"])
    except ValueError:
        if not tf1:
            raise
        # Pruning a signature out of a TF1 graph checks the shapes its SignatureDef declares,
        # which some TF1 exports get wrong (TF Serving's own half_plus_three) and TF Serving's
        # session never checks: such a version runs in a TF1 session, as TF Serving runs it.
        return session_signatures(path)
    finally:
        tf_log.setLevel(level)


@dataclass
class _SessionFunction:
    """A TF1 signature run by Session.run(), called as a loaded signature is called."""

    session: object
    proto: object
    _runs: dict = field(default_factory=dict)  # input names -> the session's callable

    def __call__(self, **tensors) -> dict:
        import tensorflow as tf
        from tensorflow.core.protobuf import config_pb2

        names = tuple(sorted(tensors))
        run = self._runs.get(names)
        if run is None:
            # C++ Session::MakeCallable(), as TF Serving runs a TF1 graph: Session.run() would
            # check each feed's shape against its placeholder's in Python; TF Serving does not.
            options = config_pb2.CallableOptions(
                feed=[self.proto.inputs[k].name for k in names],
                fetch=[t.name for t in self.proto.outputs.values()],
            )
            run = self._runs[names] = self.session._make_callable_from_options(options)
        values = run(*(tensors[k].numpy() for k in names))
        return {k: tf.constant(v) for k, v in zip(self.proto.outputs, values, strict=True)}

    @property
    def structured_input_signature(self) -> tuple:
        return (), {k: _proto_spec(t) for k, t in self.proto.inputs.items()}

    @property
    def structured_outputs(self) -> dict:
        return {k: _proto_spec(t) for k, t in self.proto.outputs.items()}


def session_signatures(path: Path) -> SimpleNamespace:
    """A TF1 SavedModel loaded into a session, its signatures callable."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        metagraph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
    functions = {
        key: _SessionFunction(session, proto)
        for key, proto in metagraph.signature_def.items()
        if proto.outputs
    }
    return SimpleNamespace(session=session, signatures=functions)


def _proto_spec(info):
    import tensorflow as tf

    return tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype))


def graph_call(function) -> Callable | None:
    """The signature's graph, called as TensorFlow itself calls it when no gradient tape is
    watching (ConcreteFunction._call_flat): the tensor and the captured variables, straight to
    the function. A signature call first binds keyword arguments, flattens them and maps every
    captured variable to its handle: Python work on every call, a sizeable part of this small
    model's batch-1 time (bench/RESULTS.md). TF Serving runs the graph from C++ and pays none of it.

    Only for one input, given with the signature's dtype and a shape it accepts (Signature.call
    checks both), so the graph gets exactly the arguments a signature call would give it. None
    where TensorFlow's internals are not as expected: the signature call is then used."""
    inputs, keywords = function.structured_input_signature
    inference = getattr(function, "_inference_function", None)
    if inputs or len(keywords) != 1 or not hasattr(inference, "call_preflattened"):
        return None
    captured = list(function.captured_inputs)
    return lambda tensor: inference.call_preflattened([tensor, *captured])


def _spec(spec) -> TensorSpec:
    dtype = np.dtype(object) if spec.dtype.name == "string" else np.dtype(spec.dtype.as_numpy_dtype)
    shape = None if spec.shape.rank is None else tuple(-1 if d is None else d for d in spec.shape)
    return TensorSpec(dtype, shape)


def warm_up(servable: Servable, path: Path) -> int:
    """Replays assets.extra/tf_serving_warmup_requests (PredictionLogs); returns the count."""
    warmup = path / WARMUP_FILE
    if not warmup.exists():
        return 0
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    for record in tf.data.TFRecordDataset(str(warmup)):
        entry = prediction_log_pb2.PredictionLog()
        entry.ParseFromString(record.numpy())
        if entry.WhichOneof("log_type") != "predict_log":
            raise ServingError(
                "UNIMPLEMENTED",
                f"Unsupported log_type for warmup: {entry.WhichOneof('log_type')}",
            )
        request = entry.predict_log.request
        signature = servable.signatures.get(request.model_spec.signature_name or SIGNATURE_NAME)
        if signature is None:
            raise invalid(
                'Serving signature name: "',
                request.model_spec.signature_name,
                '" not found in signature def',
            )
        signature.call({k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        count += 1
        if count > MAX_WARMUP_RECORDS:
            raise invalid(
                f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {warmup}"
            )
    log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d.",
        warmup,
        count,
    )
    return count
