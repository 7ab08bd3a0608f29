"""The Docker deployment, checked without Docker.

The config files parse as the protos TF Serving reads; docker-compose.yml, the Dockerfiles and the
config files agree with .env and settings.py; the server's command line, the healthcheck and the
client's command are run for real by /bin/sh and bash, with stand-ins for the programs they start.
"""

import ast
import http.server
import json
import re
import stat
import subprocess
import sys
import threading
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from conftest import free_port
from google.protobuf import text_format
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tensorflow_serving.config import model_server_config_pb2

import settings
from serving.config import read_text_proto
from serving.config_protos import BatchingParameters, MonitoringConfig

ROOT = settings.ROOT
SERVING = ROOT / "serving"
# Where the serving image keeps its config files (serving/Dockerfile COPY, compose mount).
CONFIG_DIR = "/etc/tfserving"

# Every flag tensorflow_model_server accepts: the flag_list in tensorflow/serving's
# tensorflow_serving/model_servers/main.cc (2.x). An unknown flag does not stop the server: it
# prints "unknown argument" and starts without it, so a typo would go unnoticed.
MODEL_SERVER_FLAGS = {
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support", "enable_batching",
    "allow_version_labels_for_unavailable_models", "batching_parameters_file",
    "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path", "num_load_threads",
    "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
    "file_system_poll_wait_seconds", "flush_filesystem_caches", "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism", "use_alts_credentials", "ssl_config_file",
    "platform_config_file", "per_process_gpu_memory_fraction", "saved_model_tags",
    "grpc_channel_arguments", "grpc_max_threads", "enable_model_warmup",
    "num_request_iterations_for_warmup", "version", "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "num_tflite_pools",
    "num_tflite_interpreters_per_pool", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file",
}  # fmt: skip


def parse_config(path: Path, message_class: type):
    """The file as the local server reads it, into the message TF Serving reads it into."""
    return read_text_proto(path, message_class)


# --- Reading .env, compose and Dockerfiles as their tools do --------------------------------


def test_read_env_reads_key_value_lines(tmp_path):
    """settings.read_env is how Python reads .env (settings and these tests alike)."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("# a comment\n\n  MODEL_NAME = mnist \nURL=http://x/?a=b\n# PORT=1\n")
    assert settings.read_env(dotenv) == {"MODEL_NAME": "mnist", "URL": "http://x/?a=b"}
    assert settings.read_env() == settings.read_env(ROOT / ".env")


_COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{[^}]*\}|\$[A-Za-z_]\w*")


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR} interpolation over a parsed compose file; $$ is a literal $."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        assert name, f"use the plain ${{VAR}} form: {match.group(0)!r} in {value!r}"
        assert name in env, f"${{{name}}} is not set in .env"
        return env[name]

    return _COMPOSE_VAR.sub(substitute, value)


def compose_raw() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose() -> dict:
    return interpolate(compose_raw(), settings.read_env())


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs as Docker's parser sees them: comment lines dropped (also
    inside a continued instruction) and backslash continuations joined."""
    instructions, pending = [], ""
    for line in path.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"{path}: the last instruction ends in a continuation"
    return instructions


def instruction(path: Path, keyword: str) -> str:
    found = [arguments for name, arguments in dockerfile(path) if name == keyword]
    assert len(found) == 1, f"{path} has {len(found)} {keyword} instructions"
    return found[0]


def exec_form(path: Path, keyword: str) -> list[str]:
    """An ENTRYPOINT/CMD in JSON form. Docker silently runs broken JSON as a shell command line,
    so it must parse."""
    return json.loads(instruction(path, keyword))


def copies(path: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY."""
    result = []
    for name, arguments in dockerfile(path):
        if name == "COPY":
            *sources, destination = arguments.split()
            assert not any(s.startswith("--") for s in sources), "no COPY options expected"
            result.append((sources, destination))
    return result


def run_with_stand_in(argv: list[str], program: str, env: dict[str, str], tmp_path: Path):
    """Run argv with `program` replaced by a script that prints the arguments it gets."""
    stand_in = tmp_path / program
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    path = f"{tmp_path}:/usr/bin:/bin"
    return subprocess.run(
        argv, env={"PATH": path, **env}, capture_output=True, text=True, timeout=10
    )


# --- Config files ---------------------------------------------------------------------------


def test_models_config_serves_our_model_from_the_mounted_models_folder():
    config = parse_config(SERVING / "models.config", model_server_config_pb2.ModelServerConfig)
    (model,) = config.model_config_list.config
    assert model.name == settings.MODEL_NAME
    # compose mounts ./MODELS_DIR at /models
    assert model.base_path == f"/models/{settings.MODEL_NAME}"
    models_dir = settings.read_env()["MODELS_DIR"]
    assert settings.MODEL_BASE_PATH == ROOT / models_dir / settings.MODEL_NAME
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 2


def test_models_config_labels_answer_in_a_fresh_deployment():
    """Labels stable and canary; with only version 1 trained, both must point at it."""
    config = parse_config(SERVING / "models.config", model_server_config_pb2.ModelServerConfig)
    labels = dict(config.model_config_list.config[0].version_labels)
    assert labels == {"stable": 1, "canary": 1}


def test_monitoring_config_turns_on_prometheus():
    config = parse_config(SERVING / "monitoring.config", MonitoringConfig)
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_batching_config_sets_every_scheduler_parameter():
    params = parse_config(SERVING / "batching.config", BatchingParameters)
    names = ["max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"]
    for name in names:
        assert params.HasField(name), f"batching.config leaves {name} to TF Serving's default"
    assert params.max_batch_size.value >= 1
    assert params.num_batch_threads.value >= 1
    assert params.max_enqueued_batches.value >= 1
    # A wait beyond 10 ms would cost every lone request more than the model takes.
    assert 0 <= params.batch_timeout_micros.value <= 10_000


@pytest.mark.parametrize(
    ("text", "message_class"),
    [
        ("max_batch_sise { value: 32 }", "BatchingParameters"),
        ("max_batch_size: 32", "BatchingParameters"),
        ("prometheus_config { enabled: true }", "MonitoringConfig"),
    ],
)
def test_config_protos_reject_what_tf_serving_would_reject(text, message_class):
    """The mirrored protos (serving/config_protos.py) are as strict as TF Serving: misspelt or
    mistyped fields fail."""
    classes = {"BatchingParameters": BatchingParameters, "MonitoringConfig": MonitoringConfig}
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text, classes[message_class]())


# --- serving/Dockerfile ---------------------------------------------------------------------


def pinned(requirements: str, package: str) -> str:
    for line in (ROOT / requirements).read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name.lower().replace("_", "-") == package:
            return version
    raise AssertionError(f"{package} is not pinned in {requirements}")


def test_serving_image_is_the_tf_serving_release_of_our_tensorflow():
    image = instruction(SERVING / "Dockerfile", "FROM")
    assert image == f"tensorflow/serving:{pinned('requirements.txt', 'tensorflow-cpu')}"
    assert image.endswith(":" + pinned("requirements-nodeps.txt", "tensorflow-serving-api"))


def serving_container_env() -> dict[str, str]:
    return compose()["services"]["serving"]["environment"]


# The flags file the serving container's command reads (serving/model_server.flags, mounted).
FLAGS_FILE = f"{CONFIG_DIR}/model_server.flags"


def run_model_server_command(
    command: list[str], env: dict[str, str], tmp_path: Path, flags_file: Path | None = None
) -> subprocess.CompletedProcess:
    """Run a serving container's command (exec form) with a stand-in tensorflow_model_server.

    The command reads its flags from flags_file (default serving/model_server.flags) instead of
    the container's /etc/tfserving; the flags themselves are left as the file has them.
    """
    flags_file = flags_file or SERVING / "model_server.flags"
    assert sum(FLAGS_FILE in part for part in command) == 1, "the command reads no flags file"
    command = [part.replace(FLAGS_FILE, str(flags_file)) for part in command]
    return run_with_stand_in(command, "tensorflow_model_server", env, tmp_path)


def model_server_argv(tmp_path: Path, extra: list[str] = ()) -> list[str]:
    """The arguments tensorflow_model_server gets in the serving container."""
    entrypoint = exec_form(SERVING / "Dockerfile", "ENTRYPOINT")
    result = run_model_server_command([*entrypoint, *extra], serving_container_env(), tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def flag_values(argv: list[str]) -> dict[str, str]:
    values = {}
    for argument in argv:
        match = re.fullmatch(r"--(\w+)(?:=(.*))?", argument)
        assert match, f"not a --flag: {argument!r}"
        values[match.group(1)] = match.group(2) if match.group(2) is not None else "true"
    return values


def test_model_server_gets_only_flags_it_has(tmp_path):
    flags = flag_values(model_server_argv(tmp_path))
    assert set(flags) <= MODEL_SERVER_FLAGS, set(flags) - MODEL_SERVER_FLAGS


def test_model_server_flags(tmp_path):
    flags = flag_values(model_server_argv(tmp_path))
    assert flags["port"] == str(settings.GRPC_PORT)
    assert flags["rest_api_port"] == str(settings.REST_API_PORT)
    assert flags["enable_batching"] == "true"
    assert flags["allow_version_labels_for_unavailable_models"] == "true"
    assert int(flags["model_config_file_poll_wait_seconds"]) > 0  # 0 would read it only once
    assert int(flags["file_system_poll_wait_seconds"]) > 0
    config_files = {
        "model_config_file": "models.config",
        "monitoring_config_file": "monitoring.config",
        "batching_parameters_file": "batching.config",
    }
    for flag, name in config_files.items():
        assert flags[flag] == f"{CONFIG_DIR}/{name}"


def test_make_run_gives_the_local_server_the_containers_flags(tmp_path):
    """`make run` reads the container's flags file: the local server runs as the container."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from start_server_and_app import container_flags
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from serving.__main__ import parse_args

    container = flag_values(model_server_argv(tmp_path))
    local = flag_values(container_flags())
    assert set(local) == set(container) - {"port", "rest_api_port"}
    for flag, value in local.items():
        assert value == container[flag].replace(CONFIG_DIR, str(SERVING)), flag
    args = parse_args(container_flags())
    assert args.enable_batching and args.allow_version_labels_for_unavailable_models
    assert args.model_config_file == SERVING / "models.config"
    assert args.model_config_file_poll_wait_seconds == float(
        container["model_config_file_poll_wait_seconds"]
    )


def test_model_server_takes_extra_flags_from_docker_run(tmp_path):
    argv = model_server_argv(tmp_path, extra=["--rest_api_timeout_in_ms=5000"])
    assert argv[-1] == "--rest_api_timeout_in_ms=5000"


def test_model_server_refuses_to_start_without_its_ports(tmp_path):
    entrypoint = exec_form(SERVING / "Dockerfile", "ENTRYPOINT")
    env = {k: v for k, v in serving_container_env().items() if k != "GRPC_PORT"}
    result = run_model_server_command(entrypoint, env, tmp_path)
    assert result.returncode != 0
    assert "GRPC_PORT" in result.stderr
    assert result.stdout == ""


def test_model_server_refuses_to_start_without_its_flags_file(tmp_path):
    """Not a server on default flags: one that serves nothing, or no labels."""
    entrypoint = exec_form(SERVING / "Dockerfile", "ENTRYPOINT")
    missing = tmp_path / "model_server.flags"
    result = run_model_server_command(entrypoint, serving_container_env(), tmp_path, missing)
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert result.stdout == ""


def test_serving_image_has_the_config_files_the_flags_name(tmp_path):
    (sources, destination), *others = copies(SERVING / "Dockerfile")
    assert not others
    assert destination.rstrip("/") == CONFIG_DIR
    assert set(sources) == {
        "models.config", "monitoring.config", "batching.config", "model_server.flags"
    }  # fmt: skip
    assert all((SERVING / source).is_file() for source in sources)
    named = [v for v in flag_values(model_server_argv(tmp_path)).values() if v.startswith("/")]
    assert {f"{CONFIG_DIR}/{source}" for source in sources} == {*named, FLAGS_FILE}


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_uses_only_variables_from_dotenv():
    env = settings.read_env()
    interpolate(compose_raw(), env)  # asserts on any unknown or unsupported variable
    assert env["MODEL_NAME"] == settings.MODEL_NAME
    assert int(env["REST_API_PORT"]) == settings.REST_API_PORT
    assert int(env["GRPC_PORT"]) == settings.GRPC_PORT
    assert int(env["CLIENT_PORT"]) == settings.CLIENT_PORT


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_ports_and_model_name_are_written_only_in_dotenv():
    """compose and the Dockerfiles say ${GRPC_PORT}, never 8500 (comments aside)."""
    facts = [settings.MODEL_NAME, settings.GRPC_PORT, settings.REST_API_PORT, settings.CLIENT_PORT]
    texts = list(strings(compose_raw()))
    for part in ("serving", "client", "train"):
        texts += [arguments for _, arguments in dockerfile(ROOT / part / "Dockerfile")]
    for text in texts:
        for fact in facts:
            assert not re.search(rf"\b{fact}\b", text), f"{fact} written out in {text!r}"


def test_compose_has_serving_client_and_a_train_profile():
    services = compose()["services"]
    assert set(services) == {"serving", "client", "train"}
    assert "profiles" not in services["serving"] and "profiles" not in services["client"]
    assert services["train"]["profiles"] == ["train"]


def test_compose_serving_service():
    serving = compose()["services"]["serving"]
    assert serving["build"] == "serving"
    assert serving["environment"] == {
        "GRPC_PORT": str(settings.GRPC_PORT),
        "REST_API_PORT": str(settings.REST_API_PORT),
    }
    assert sorted(serving["ports"]) == sorted(
        f"127.0.0.1:{port}:{port}" for port in (settings.GRPC_PORT, settings.REST_API_PORT)
    )
    models_dir = settings.MODEL_BASE_PATH.parent.relative_to(ROOT)
    assert f"./{models_dir}:/models:ro" in serving["volumes"]
    assert f"./serving:{CONFIG_DIR}:ro" in serving["volumes"]


def test_compose_client_service():
    client = compose()["services"]["client"]
    assert client["build"] == {"context": ".", "dockerfile": "client/Dockerfile"}
    url = urlparse(client["environment"]["TF_SERVING_URL"])
    assert (url.scheme, url.hostname, url.port) == ("http", "serving", settings.REST_API_PORT)
    # The client's default (outside Docker) is the same server port on localhost.
    assert urlparse(settings.DEFAULT_SERVING_URL).port == settings.REST_API_PORT
    assert client["environment"]["CLIENT_PORT"] == str(settings.CLIENT_PORT)
    # Published on loopback only, by default: the app deletes corrections and asks no password.
    assert client["ports"] == [f"127.0.0.1:{settings.CLIENT_PORT}:{settings.CLIENT_PORT}"]
    assert settings.CLIENT_PORT != settings.REST_API_PORT
    assert client["depends_on"] == {"serving": {"condition": "service_healthy"}}


def test_the_feedback_store_is_in_a_volume_the_client_writes_and_train_reads():
    """.env's FEEDBACK_DB is a path under the repo root, /app in the images: its folder is a
    named volume in the client (which the image makes, owned by its user). Train mounts the same
    volume beside /app/data (which ships training data) and names the same file in it."""
    spec = compose()
    store = ROOT / settings.read_env()["FEEDBACK_DB"]
    folder = store.parent.relative_to(ROOT)
    assert f"feedback-data:/app/{folder}" in spec["services"]["client"]["volumes"]
    train = spec["services"]["train"]
    mounted = train["environment"]["FEEDBACK_DB"].rsplit("/", 1)
    assert mounted[1] == store.name
    assert f"feedback-data:{mounted[0]}" in train["volumes"]
    assert not any(v.endswith(f":/app/{folder}") for v in train["volumes"])
    assert "feedback-data" in spec["volumes"]
    run = " ".join(arguments for name, arguments in dockerfile(ROOT / "client" / "Dockerfile")
                   if name == "RUN")  # fmt: skip
    assert f"mkdir {folder} && chown app {folder}" in run
    assert instruction(ROOT / "client" / "Dockerfile", "WORKDIR") == "/app"


def test_compose_train_service_writes_where_serving_reads():
    spec = compose()
    train = spec["services"]["train"]
    assert train["build"] == {"context": ".", "dockerfile": "train/Dockerfile"}
    models_dir = settings.MODEL_BASE_PATH.parent.relative_to(ROOT)
    assert f"./{models_dir}:/models" in train["volumes"]  # read-write
    config = parse_config(SERVING / "models.config", model_server_config_pb2.ModelServerConfig)
    base_path = config.model_config_list.config[0].base_path
    assert train["command"] == ["--data", "tfds", "--model-base-path", base_path]
    # tfds downloads into a named volume, at the path the image tells tfds to use.
    (cache,) = [v for v in train["volumes"] if v.startswith("tfds-cache:")]
    volume, target = cache.split(":")
    assert volume in spec["volumes"]
    train_env = instruction(ROOT / "train" / "Dockerfile", "ENV")
    assert f"TFDS_DATA_DIR={target}" in train_env.split()
    assert exec_form(ROOT / "train" / "Dockerfile", "ENTRYPOINT") == ["python", "-m", "train"]


# --- The serving healthcheck, run by bash against a stand-in TF Serving -----------------------


def status_body(state: str) -> bytes:
    """TF Serving's model status JSON (GET /v1/models/<name>, docs/rest-api.md) for one version."""
    status = {"version": "1", "state": state, "status": {"error_code": "OK", "error_message": ""}}
    return json.dumps({"model_version_status": [status]}, indent=1).encode()


@pytest.fixture
def fake_serving():
    """A REST port answering model status for settings.MODEL_NAME in a state the test sets."""
    answer = {"state": "AVAILABLE"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == f"/v1/models/{settings.MODEL_NAME}":
                code, body = 200, status_body(answer["state"])
            else:
                code, body = 404, b'{"error": "Servable not found"}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1], answer
    server.shutdown()
    server.server_close()


def healthcheck(port: int) -> subprocess.CompletedProcess:
    """Run the compose healthcheck with the REST port moved to `port`."""
    test = interpolate(
        compose_raw()["services"]["serving"]["healthcheck"]["test"],
        {**settings.read_env(), "REST_API_PORT": str(port)},
    )
    assert test[0] == "CMD"
    # The official image has no curl or wget; the check must not need them.
    assert not {"curl", "wget"} & set(" ".join(test).split())
    return subprocess.run(test[1:], capture_output=True, timeout=10, env={"PATH": "/usr/bin:/bin"})


def test_healthcheck_asks_the_model_status_url_on_the_rest_port():
    test = " ".join(compose_raw()["services"]["serving"]["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/${REST_API_PORT}" in test
    assert "GET /v1/models/${MODEL_NAME} " in test


def test_healthcheck_passes_when_a_version_is_available(fake_serving):
    port, _ = fake_serving
    assert healthcheck(port).returncode == 0


def test_healthcheck_fails_while_the_version_loads(fake_serving):
    port, answer = fake_serving
    answer["state"] = "LOADING"
    assert healthcheck(port).returncode != 0


def test_healthcheck_fails_when_nothing_listens():
    assert healthcheck(free_port()).returncode != 0


# --- client/Dockerfile and train/Dockerfile -------------------------------------------------


def test_client_image_installs_only_the_client_requirements():
    client = ROOT / "client" / "Dockerfile"
    assert instruction(client, "FROM") == "python:3.11-slim"
    runs = [arguments for name, arguments in dockerfile(client) if name == "RUN"]
    # -c: requirements.txt pins what the client's packages pull in, and installs nothing itself.
    assert "pip install -r requirements-client.txt -c requirements.txt" in runs
    copied = {source for sources, _ in copies(client) for source in sources}
    assert {"requirements-client.txt", "settings.py", ".env", "client/"} <= copied


def installed_with(requirements: str, with_dependencies: bool = True) -> set[str]:
    """The distributions `pip install -r requirements` installs: its pins and, unless --no-deps,
    all they require, as the installed packages' metadata says."""
    lines = [line.split("#")[0].strip() for line in (ROOT / requirements).read_text().splitlines()]
    todo = [Requirement(line).name for line in lines if line]
    found: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found.add(name)
        if not with_dependencies:
            continue
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def imported_modules(folders: list[str]) -> set[str]:
    """Top-level names of the absolute imports in the folders' Python files."""
    imported = set()
    for folder in folders:
        for path in (ROOT / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    imported |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    imported.add(node.module.split(".")[0])
    return imported - set(sys.stdlib_module_names)


FIRST_PARTY = {"client", "train", "export", "serving", "settings", "feedback"}
IMAGES = {
    # image: (folders it runs, first-party modules it copies, what it installs)
    "client": (
        ["client", "feedback"],
        {"client", "feedback", "settings"},
        {"requirements-client.txt": True},
    ),
    "train": (
        ["train", "export"],
        {"train", "export", "feedback", "settings"},
        {"requirements.txt": True, "requirements-nodeps.txt": False},
    ),
}


@pytest.mark.parametrize("image", IMAGES)
def test_images_have_every_package_their_code_imports(image):
    folders, copied, requirements = IMAGES[image]
    imported = imported_modules(folders)
    assert imported & FIRST_PARTY <= copied, (
        f"the {image} image lacks {imported & FIRST_PARTY - copied}"
    )
    installed = set().union(*(installed_with(r, deps) for r, deps in requirements.items()))
    distributions = metadata.packages_distributions()
    for module in imported - FIRST_PARTY:
        owners = {canonicalize_name(d) for d in distributions.get(module, [])}
        assert owners & installed, f"{image} code imports {module}, which its image lacks"


def test_client_image_has_no_tensorflow():
    assert "tensorflow" not in imported_modules(["client", "feedback"])
    installed = installed_with("requirements-client.txt")
    assert not {"tensorflow", "tensorflow-cpu", "keras"} & installed


def test_client_command(tmp_path):
    """Streamlit on CLIENT_PORT, on all interfaces, with the environment compose gives it."""
    command = instruction(ROOT / "client" / "Dockerfile", "CMD")
    env = compose()["services"]["client"]["environment"]
    result = run_with_stand_in(["/bin/sh", "-c", command], "streamlit", env, tmp_path)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert argv[:2] == ["run", "client"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options["--server.port"] == str(settings.CLIENT_PORT)
    assert options["--server.address"] == "0.0.0.0"


@pytest.mark.parametrize("image", ["client", "train"])
def test_images_copy_files_that_exist_and_are_not_dockerignored(image):
    """Both build from the repo root, where .dockerignore applies."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not modelled here"

    def ignored(path: str) -> bool:
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        candidates = {p for pattern in patterns for p in (pattern, pattern.removeprefix("**/"))}
        return any(fnmatch(prefix, p) for prefix in prefixes for p in candidates)

    for sources, _ in copies(ROOT / image / "Dockerfile"):
        for source in sources:
            assert (ROOT / source).exists(), f"{image} image copies missing {source}"
            assert not ignored(source), f".dockerignore hides {source} from the {image} image"
    for heavy in (".venv", "models", "runs", ".git", "client/__pycache__"):
        assert ignored(heavy), f".dockerignore lets {heavy} into the build context"


def test_train_image_installs_the_pinned_training_requirements():
    train = ROOT / "train" / "Dockerfile"
    runs = " ".join(arguments for name, arguments in dockerfile(train) if name == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "pip install --no-deps -r requirements-nodeps.txt" in runs
