"""Reading TF Serving's config files: models.config, the batching parameters and monitoring config.

models.config is a text ModelServerConfig proto, parsed with tensorflow-serving-api's own proto.
The batching and monitoring protos are not in that package, so their few fields are read by a
small text-proto reader.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

# The folder docker compose mounts the models into; --models_root stands in for it locally.
CONTAINER_MODELS_ROOT = "/models"


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
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(Path(path).read_text(), config)
    except text_format.ParseError as e:
        raise ValueError(f"Invalid protobuf file: '{path}': {e}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path} has no model_config_list (custom_model_config is not supported)")
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
    base_path = resolve_base_path(entry.base_path, models_root)
    if not base_path.is_absolute():
        # server_core.cc ValidateModelConfigList()
        raise ValueError(
            f"Expected model {entry.name} to have an absolute path or URI; "
            f"got base_path()={entry.base_path}"
        )
    model = ModelConfig(entry.name, base_path, labels=dict(entry.version_labels))
    choice = entry.model_version_policy.WhichOneof("policy_choice")
    if choice == "all":
        model.policy = "all"
    elif choice == "specific":
        model.policy = "specific"
        model.versions = tuple(entry.model_version_policy.specific.versions)
    elif choice == "latest":
        model.num_versions = entry.model_version_policy.latest.num_versions or 1
    return model


def resolve_base_path(base_path: str, models_root: Path | None) -> Path:
    """Our one extension (--models_root): a base path under /models is read inside models_root."""
    path = Path(base_path)
    if models_root is not None:
        try:
            relative = path.relative_to(CONTAINER_MODELS_ROOT)
        except ValueError:
            return path
        return Path(models_root).resolve() / relative
    return path


def read_text_proto(path: Path) -> dict:
    """A small text-format reader for flat protos such as BatchingParameters and MonitoringConfig.

    Returns nested dicts: `max_batch_size { value: 32 }` -> {"max_batch_size": {"value": 32}}.
    """
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}:,;]|[^\s{}:,;"]+', _strip_comments(path))
    value, rest = _read_fields(tokens, 0)
    if rest != len(tokens):
        raise ValueError(f"Invalid protobuf file: '{path}': unexpected '{tokens[rest]}'")
    return value


def _strip_comments(path: Path) -> str:
    return "\n".join(line.split("#", 1)[0] for line in Path(path).read_text().splitlines())


def _read_fields(tokens: list[str], i: int) -> tuple[dict, int]:
    fields: dict = {}
    while i < len(tokens) and tokens[i] != "}":
        name = tokens[i]
        i += 1
        if i < len(tokens) and tokens[i] == ":":
            i += 1
        if i < len(tokens) and tokens[i] == "{":
            fields[name], i = _read_fields(tokens, i + 1)
            if i >= len(tokens):
                raise ValueError(f"Invalid protobuf text: missing '}}' after {name}")
            i += 1
        elif i < len(tokens):
            fields[name] = _scalar(tokens[i])
            i += 1
        else:
            raise ValueError(f"Invalid protobuf text: no value for {name}")
        while i < len(tokens) and tokens[i] in ",;":
            i += 1
    return fields, i


def _scalar(token: str):
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if token in ("true", "false"):
        return token == "true"
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token


@dataclass
class BatchingParameters:
    """The BatchingParameters fields the local batcher honours, with TF Serving's defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 1


def read_batching_parameters(path: Path | None) -> BatchingParameters:
    params = BatchingParameters()
    if path is None:
        return params
    for name, value in read_text_proto(path).items():
        if hasattr(params, name) and isinstance(value, dict) and "value" in value:
            setattr(params, name, int(value["value"]))
    return params


def read_prometheus_path(path: Path | None, default: str) -> str | None:
    """The Prometheus path a MonitoringConfig enables (None when it disables it)."""
    if path is None:
        return default
    prometheus = read_text_proto(path).get("prometheus_config", {})
    if not prometheus.get("enable", False):
        return None
    return prometheus.get("path") or default
