"""Reading TF Serving's config files: models.config, the batching parameters and monitoring config.

Each is a text-format proto, parsed by protobuf's own parser into the message TF Serving reads it
into: ModelServerConfig from tensorflow-serving-api, BatchingParameters and MonitoringConfig from
serving/config_protos.py. A misspelt field fails as in TF Serving: the server does not start.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from serving import config_protos

log = logging.getLogger("serving")

# The folder docker compose mounts the models into; --models_root stands in for it locally.
CONTAINER_MODELS_ROOT = "/models"


def read_text_proto(path: Path, message_class: type) -> Message:
    """A text-format proto file parsed into message_class, as TF Serving's ParseProtoTextFile()
    reads it: an unknown field or a wrongly typed value is an error (ValueError), and the server
    that reads it at startup refuses to start."""
    try:
        return text_format.Parse(Path(path).read_text(), message_class())
    except text_format.ParseError as e:
        # TF Serving says "Invalid protobuf file: '<path>'"; protobuf's parser logs the detail.
        name = message_class.DESCRIPTOR.full_name
        logging.getLogger("protobuf").error("Error parsing text-format %s: %s", name, e)
        raise ValueError(f"Invalid protobuf file: '{path}': {e}") from None


@dataclass
class ModelConfig:
    """One model to serve: where its versions live, which to serve, and its labels."""

    name: str
    base_path: Path
    policy: str = "latest"  # latest | all | specific
    num_versions: int = 1  # for latest
    versions: tuple[int, ...] = ()  # for specific
    labels: dict[str, int] = field(default_factory=dict)


def read_model_config_file(path: Path, models_root: Path | None) -> list[ModelConfig]:
    """The models of a text ModelServerConfig file, base paths resolved; ValueError if invalid."""
    config = read_text_proto(path, model_server_config_pb2.ModelServerConfig)
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path} has no model_config_list (custom_model_config is not supported)")
    return models_from_proto(config, models_root)


def models_from_proto(config, models_root: Path | None) -> list[ModelConfig]:
    """The models of a ModelServerConfig's model_config_list (a file's, or a reload request's);
    ValueError with server_core.cc's message if one is invalid."""
    models, names = [], set()
    for entry in config.model_config_list.config:
        if entry.name in names:
            # server_core.cc ValidateModelConfigList()
            raise ValueError(f"Illegal to list model {entry.name} multiple times in config list")
        names.add(entry.name)
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f"Model {entry.name} requests unsupported platform {entry.model_platform}"
            )
        models.append(_model(entry, models_root))
    return models


def _model(entry, models_root: Path | None) -> ModelConfig:
    base_path = Path(entry.base_path)
    if models_root is not None and base_path.is_relative_to(CONTAINER_MODELS_ROOT):
        # Our one extension (--models_root): a base path under /models is read inside models_root.
        base_path = Path(models_root).resolve() / base_path.relative_to(CONTAINER_MODELS_ROOT)
    if not base_path.is_absolute():
        # server_core.cc ValidateModelConfigList()
        raise ValueError(
            f"Expected model {entry.name} to have an absolute path or URI; "
            f"got base_path()={entry.base_path}"
        )
    policy = entry.model_version_policy
    return ModelConfig(
        entry.name,
        base_path,
        policy=policy.WhichOneof("policy_choice") or "latest",
        num_versions=policy.latest.num_versions or 1,
        versions=tuple(policy.specific.versions),
        labels=dict(entry.version_labels),
    )


@dataclass
class BatchingParameters:
    """The BatchingParameters fields the local batcher honours, with TF Serving's defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 1


def read_batching_parameters(path: Path | None) -> BatchingParameters:
    if path is None:
        return BatchingParameters()
    proto = read_text_proto(path, config_protos.BatchingParameters)
    honoured = [f.name for f in dataclasses.fields(BatchingParameters)]
    ignored = [f.name for f, _ in proto.ListFields() if f.name not in honoured]
    if ignored:
        log.warning("The local batcher does not use %s from %s", ", ".join(ignored), path)
    return BatchingParameters(**{n: getattr(proto, n).value for n in honoured if proto.HasField(n)})


def read_prometheus_path(path: Path | None, default: str) -> str | None:
    """The Prometheus path a MonitoringConfig enables: None without one, or when it is disabled
    (http_server.cc registers the handler only for prometheus_config { enable: true })."""
    if path is None:
        return None
    prometheus = read_text_proto(path, config_protos.MonitoringConfig).prometheus_config
    return (prometheus.path or default) if prometheus.enable else None
