"""The Kubernetes deployment (deploy/k8s, the deploy/k8s-gcs overlay), checked without a cluster.

Each folder is built by `kubectl kustomize`, the kustomize that `kubectl apply -k` runs (skipped
without kubectl, except under CI=true, where that is a failure), every object validates against
the Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail), and the objects
agree with the rest of the product: serving/Dockerfile's image and command, serving/'s config
files (the ConfigMaps are made from them), .env's ports and model name (through settings), the
REST API's status URL, compose's training command. The
commands the pods run (server, readiness probe, app) are run for real by /bin/sh and bash. The
feedback store: every replica and training reads one Secret key, the runbook's URL names the
database Service, no password is committed, and a real PostgreSQL set up as the database pod sets
itself up opens with that URL, answers its readiness probe, and restores the runbook's backup.
"""

import copy
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import requests
import yaml
from conftest import free_port, start_until, stop_server
from google.protobuf import text_format
from kubernetes_validate.utils import latest_version
from postgres import POSTGRES_BIN, postgres_server
from tensorflow_serving.config import model_server_config_pb2
from test_deployment import (  # noqa: F401 (fake_serving is a fixture)
    CONFIG_DIR,
    FLAGS_FILE,
    SERVING,
    compose,
    copies,
    exec_form,
    fake_serving,
    flag_values,
    instruction,
    model_server_argv,
    parse_config,
    run_model_server_command,
    run_with_stand_in,
)

import settings

ROOT = settings.ROOT
K8S = ROOT / "deploy" / "k8s"
GCS = ROOT / "deploy" / "k8s-gcs"
# The oldest Kubernetes the docs promise (kubectl 1.27 embeds kustomize v5), and the newest whose
# schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.27.0", latest_version()]
STATUS_PATH = f"/v1/models/{settings.MODEL_NAME}"  # TF Serving's model status URL


def kustomize(folder: Path) -> subprocess.CompletedProcess:
    """`kubectl kustomize folder`: what `kubectl apply -k folder` would apply, as YAML."""
    if not shutil.which("kubectl"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and no kubectl: the Kubernetes tests must run in CI")
        pytest.skip("no kubectl to build the kustomizations with")
    command = ["kubectl", "kustomize", str(folder)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def build(folder: Path) -> list[dict]:
    """The objects `kubectl apply -k folder` applies (in no particular order)."""
    result = kustomize(folder)
    assert result.returncode == 0, result.stderr
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job"):
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return [obj["spec"]] if obj["kind"] == "Pod" else []


def containers(obj: dict) -> list[dict]:
    keys = ("initContainers", "containers")
    return [c for spec in pod_specs(obj) for key in keys for c in spec.get(key, [])]


def split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of name[:tag][@digest]; a registry's :port is part of the name."""
    rest, _, digest = image.partition("@")
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, ""
    return name, tag, digest


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict]:
    """What `kubectl apply -k deploy/k8s` applies, by (kind, name)."""
    return {(o["kind"], o["metadata"]["name"]): o for o in build(K8S)}


@pytest.fixture(scope="module")
def gcs_objects() -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in build(GCS)}


def only(objects: dict, kind: str, name: str | None = None) -> dict:
    found = [o for (k, n), o in objects.items() if k == kind and name in (None, n)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} objects"
    return found[0]


def container(obj: dict, name: str) -> dict:
    (found,) = [c for c in containers(obj) if c["name"] == name]
    return found


def env(spec: dict) -> dict[str, str]:
    """A container's plain environment values (not those taken from a Secret)."""
    return {e["name"]: e["value"] for e in spec.get("env", []) if "value" in e}


def port(spec: dict, name: str) -> int:
    (found,) = [p["containerPort"] for p in spec["ports"] if p["name"] == name]
    return found


def config_map_files(objects: dict, obj: dict, volume_name: str) -> dict[str, str]:
    """The files a pod sees in a ConfigMap (or projected ConfigMaps) volume: name -> content."""
    (volume,) = [v for v in obj["spec"]["template"]["spec"]["volumes"] if v["name"] == volume_name]
    sources = volume.get("projected", {}).get("sources", [{"configMap": volume.get("configMap")}])
    files = {}
    for source in sources:
        data = only(objects, "ConfigMap", source["configMap"]["name"])["data"]
        assert not set(data) & set(files), "two ConfigMaps give the same file"
        files |= data
    return files


def mounted_config(objects: dict, folder: Path) -> Path:
    """The serving pod's /etc/tfserving (its ConfigMaps' files), written into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    deployment = only(objects, "Deployment", "serving")
    for name, text in config_map_files(objects, deployment, "config").items():
        (folder / name).write_text(text)
    return folder


def models_config(text: str) -> model_server_config_pb2.ModelServerConfig:
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def kubelet_expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of a container's command (third_party/forked/golang/expansion):
    $$ is a $, $(NAME) of a defined variable its value, anything else stays as written."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(" and ")" in text[i + 2 :]:
                end = text.index(")", i + 2)
                name = text[i + 2 : end]
                out.append(variables.get(name, text[i : end + 1]))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


# --- What `kubectl apply -k` reads -----------------------------------------------------------


@pytest.mark.parametrize("folder", [K8S, GCS], ids=["k8s", "k8s-gcs"])
def test_the_kustomization_builds(folder):
    assert build(folder)  # a missing file or a failing patch raises


def test_the_kustomization_lists_every_manifest_in_its_folder():
    listed = kustomization(K8S)["resources"]
    manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == manifests


def test_config_maps_are_made_from_servings_own_files():
    """The ConfigMaps come from serving/'s files, not from copies: serving/kustomization.yaml, a
    kustomize Component that deploy/k8s includes, generates them (a kustomization may read only
    files in or below its own folder), from the files serving/Dockerfile copies."""
    assert "configMapGenerator" not in kustomization(K8S)
    assert [(K8S / c).resolve() for c in kustomization(K8S)["components"]] == [SERVING]
    component = kustomization(SERVING)
    assert component["kind"] == "Component"
    files = [name for g in component["configMapGenerator"] for name in g["files"]]
    ((copied, _),) = copies(SERVING / "Dockerfile")
    assert sorted(files) == sorted(copied)
    assert all((SERVING / name).is_file() and "/" not in name for name in files)


def test_a_generator_reading_serving_from_deploy_would_fail(tmp_path):
    """Why serving/ holds the generator: kustomize refuses `../../serving/models.config`."""
    folder = tmp_path / "deploy" / "k8s"
    folder.mkdir(parents=True)
    shutil.copytree(SERVING, tmp_path / "serving")
    (folder / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "configMapGenerator:\n  - name: serving-models\n"
        "    files: [../../serving/models.config]\n"
    )
    result = kustomize(folder)
    assert result.returncode != 0 and "is not in or below" in result.stderr


# --- Kubernetes' API schemas ------------------------------------------------------------------


def validate(obj: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(p) for p in error.path)
        what = f"{obj['kind']} {obj['metadata']['name']}"
        raise AssertionError(f"{what}: {where}: {error.message}") from None


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", [K8S, GCS], ids=["k8s", "k8s-gcs"])
def test_every_object_applied_validates(folder, version):
    for obj in build(folder):
        validate(obj, version)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_file_validates(version):
    for path in K8S.glob("*.yaml"):
        if path.name != "kustomization.yaml":
            for obj in load_yaml_documents(path):
                validate(obj, version)


def test_the_schemas_reject_a_misspelt_field(objects):
    """Strict validation: what the API server would drop without a word fails here."""
    deployment = only(objects, "Deployment", "serving")
    misspelt = yaml.safe_load(
        yaml.safe_dump(deployment).replace("readinessProbe", "readynessProbe")
    )
    with pytest.raises(AssertionError, match="readynessProbe"):
        validate(misspelt, KUBERNETES_VERSIONS[-1])


# --- namespace, labels, images ----------------------------------------------------------------


def test_everything_is_in_one_labelled_namespace(objects):
    spec = kustomization(K8S)
    namespace = only(objects, "Namespace")
    assert namespace["metadata"]["name"] == spec["namespace"]
    (label,) = spec["labels"]
    for obj in objects.values():
        assert obj["metadata"]["labels"].items() >= label["pairs"].items(), obj["kind"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == spec["namespace"]
        selector = obj.get("spec", {}).get("selector", {})
        assert not set(selector.get("matchLabels", selector)) & set(label["pairs"])


def test_images_come_from_one_registry_and_tag():
    """Each `images:` entry renames an image the manifests use (one that matches nothing would
    silently leave an unpushable name in the cluster); ours share a registry and a tag."""
    manifests = [obj for path in K8S.glob("*.yaml") for obj in load_yaml_documents(path)]
    used = {split_image(c["image"])[0] for obj in manifests for c in containers(obj)}
    images = {image["name"]: image for image in kustomization(K8S)["images"]}
    assert set(images) <= used
    ours = [images["mnist-client"], images["mnist-train"]]
    assert len({image["newName"].rsplit("/", 1)[0] for image in ours}) == 1
    assert len({image["newTag"] for image in ours}) == 1


def test_client_and_train_run_the_images_built_from_their_dockerfiles(objects):
    images = {image["name"]: image for image in kustomization(K8S)["images"]}
    for kind, name, image in [
        ("Deployment", "client", "mnist-client"),
        ("Job", "train", "mnist-train"),
    ]:
        entry = images[image]
        assert container(only(objects, kind, name), name)["image"] == (
            f"{entry['newName']}:{entry['newTag']}"
        )
        assert (ROOT / name / "Dockerfile").is_file()


# --- TF Serving: image, command, flags, ports, config files -----------------------------------


def test_serving_runs_the_image_serving_dockerfile_builds_on(objects):
    serving = container(only(objects, "Deployment", "serving"), "serving")
    assert serving["image"] == instruction(SERVING / "Dockerfile", "FROM")


def test_serving_runs_the_dockerfiles_entrypoint(objects):
    serving = container(only(objects, "Deployment", "serving"), "serving")
    entrypoint = exec_form(SERVING / "Dockerfile", "ENTRYPOINT")
    assert "args" not in serving
    assert [" ".join(part.split()) for part in serving["command"]] == [
        " ".join(part.split()) for part in entrypoint
    ]


def test_the_pods_server_gets_the_docker_containers_arguments(objects, tmp_path):
    """The pod's command, as kubelet expands it and /bin/sh runs it, with the ConfigMap's flags
    file: tensorflow_model_server gets what the Docker container gives it."""
    serving = container(only(objects, "Deployment", "serving"), "serving")
    variables = env(serving)
    command = [kubelet_expand(part, variables) for part in serving["command"]]
    flags = mounted_config(objects, tmp_path / "etc") / "model_server.flags"
    result = run_model_server_command(command, variables, tmp_path, flags)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == model_server_argv(tmp_path)
    flags = flag_values(result.stdout.splitlines())
    assert int(flags["port"]) == port(serving, "grpc") == settings.GRPC_PORT
    assert int(flags["rest_api_port"]) == port(serving, "rest") == settings.REST_API_PORT
    assert variables["MODEL_NAME"] == settings.MODEL_NAME


def test_the_config_folder_holds_the_files_the_image_has(objects, tmp_path):
    """/etc/tfserving in the pod: serving/'s files (the image's COPY), every one the flags name,
    mounted as a whole folder (kubelet never updates a subPath mount)."""
    deployment = only(objects, "Deployment", "serving")
    mounts = container(deployment, "serving")["volumeMounts"]
    (mount,) = [m for m in mounts if m["mountPath"] == CONFIG_DIR]
    assert "subPath" not in mount and mount.get("readOnly")
    files = config_map_files(objects, deployment, mount["name"])
    ((copied, _),) = copies(SERVING / "Dockerfile")
    assert set(files) == set(copied)
    named = {v for v in flag_values(model_server_argv(tmp_path)).values() if v.startswith("/")}
    assert {f"{CONFIG_DIR}/{name}" for name in files} == named | {FLAGS_FILE}


def test_config_map_files_are_servings(objects):
    """Byte for byte: the cluster serves serving/'s files, models.config's labels included."""
    deployment = only(objects, "Deployment", "serving")
    files = config_map_files(objects, deployment, "config")
    for name, text in files.items():
        assert text == (SERVING / name).read_text(), name


def assert_same_models(config, other_base_path: bool = False) -> None:
    """config's models are serving/models.config's: the same but for the labels' versions (and
    the base path, if other_base_path)."""
    cluster = model_server_config_pb2.ModelServerConfig()
    cluster.CopyFrom(config)
    ours = parse_config(SERVING / "models.config", model_server_config_pb2.ModelServerConfig)
    (model,) = cluster.model_config_list.config
    labels = dict(model.version_labels)
    assert set(labels) == set(ours.model_config_list.config[0].version_labels)
    assert all(version >= 1 for version in labels.values())
    model.ClearField("version_labels")
    ours.model_config_list.config[0].ClearField("version_labels")
    if other_base_path:
        model.base_path = ours.model_config_list.config[0].base_path
    assert cluster == ours, "the cluster's models.config differs from serving/models.config"


def test_only_models_config_is_updated_in_place(objects):
    """TF Serving re-reads models.config (so its ConfigMap keeps its name and changes in place)
    and reads the rest once at start (so a change makes a new, hash-named ConfigMap: a rollout)."""
    generators = {g["name"]: g for g in kustomization(SERVING)["configMapGenerator"]}
    for name, generator in generators.items():
        in_place = generator.get("options", {}).get("disableNameSuffixHash", False)
        files = {Path(f).name for f in generator["files"]}
        assert in_place == (files == {"models.config"})
        names = [n for (k, n) in objects if k == "ConfigMap" and n.startswith(name)]
        assert names == [name] if in_place else re.fullmatch(rf"{name}-[a-z0-9]{{10}}", names[0])


def test_serving_reads_the_store_at_the_config_base_path(objects):
    deployment = only(objects, "Deployment", "serving")
    config = models_config(config_map_files(objects, deployment, "config")["models.config"])
    (model,) = config.model_config_list.config
    assert model.name == settings.MODEL_NAME
    mounts = {m["name"]: m for m in container(deployment, "serving")["volumeMounts"]}
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "models"]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert volume["persistentVolumeClaim"].get("readOnly") and mounts["models"].get("readOnly")
    assert Path(model.base_path).parent == Path(mounts["models"]["mountPath"])
    # compose's layout: MODELS_DIR holds <MODEL_NAME>/<version>/, mounted at the same path.
    assert settings.MODEL_BASE_PATH.name == Path(model.base_path).name
    pvc = only(objects, "PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_training_writes_where_serving_reads_as_compose_trains(objects):
    from train.__main__ import parse_args

    job = only(objects, "Job", "train")
    train = container(job, "train")
    deployment = only(objects, "Deployment", "serving")
    config = models_config(config_map_files(objects, deployment, "config")["models.config"])
    base_path = config.model_config_list.config[0].base_path
    assert train["args"] == compose()["services"]["train"]["command"]
    assert parse_args(train["args"]).model_base_path == Path(base_path)
    mounts = {m["mountPath"]: m["name"] for m in train["volumeMounts"]}
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    store = volumes[mounts[str(Path(base_path).parent)]]["persistentVolumeClaim"]
    assert "readOnly" not in store
    serving_volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert store["claimName"] == serving_volumes["models"]["persistentVolumeClaim"]["claimName"]
    # tfds downloads into the folder the image tells it to use.
    image_env = instruction(ROOT / "train" / "Dockerfile", "ENV").split()
    tfds_dir = next(e.split("=")[1] for e in image_env if e.startswith("TFDS_DATA_DIR="))
    assert "emptyDir" in volumes[mounts[tfds_dir]]


# --- Probes, against a stand-in TF Serving and against the local server ----------------------


def readiness(objects, rest_port: int) -> subprocess.CompletedProcess:
    serving = container(only(objects, "Deployment", "serving"), "serving")
    command = serving["readinessProbe"]["exec"]["command"]
    assert not {"curl", "wget"} & set(" ".join(command).split())  # not in the official image
    variables = {**env(serving), "REST_API_PORT": str(rest_port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, capture_output=True, timeout=10, env=variables)


def test_liveness_and_startup_ask_the_model_status_url(objects):
    serving = container(only(objects, "Deployment", "serving"), "serving")
    for probe in ("startupProbe", "livenessProbe"):
        get = serving[probe]["httpGet"]
        assert get["path"] == STATUS_PATH and port(serving, get["port"]) == settings.REST_API_PORT
    # Time for the first model to train on a fresh cluster before the container is restarted.
    startup = serving["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 20 * 60


def test_readiness_passes_when_a_version_is_available(objects, fake_serving):  # noqa: F811
    rest_port, _ = fake_serving
    assert readiness(objects, rest_port).returncode == 0


def test_readiness_fails_while_the_version_loads(objects, fake_serving):  # noqa: F811
    """TF Serving answers the status URL with 200 while LOADING: an httpGet probe would pass."""
    rest_port, answer = fake_serving
    answer["state"] = "LOADING"
    assert requests.get(f"http://127.0.0.1:{rest_port}{STATUS_PATH}", timeout=5).ok
    assert readiness(objects, rest_port).returncode != 0


def test_readiness_fails_when_nothing_listens(objects):
    assert readiness(objects, free_port()).returncode != 0


@pytest.fixture(scope="module")
def cluster_config_server(objects, tiny_model_base, tmp_path_factory):
    """`python -m serving`, our TF Serving REST server, with the ConfigMap's files and flags and a
    store holding version 1: a fresh cluster's serving pod."""
    root = tmp_path_factory.mktemp("cluster") / "models"
    shutil.copytree(tiny_model_base / "1", root / settings.MODEL_NAME / "1")
    config = mounted_config(objects, root.parent / "etc")
    text = (config / "model_server.flags").read_text()
    flags = " ".join(line.split("#")[0] for line in text.splitlines()).split()
    rest_port = free_port()
    command = [sys.executable, "-m", "serving", "--models_root", str(root)]
    command += ["--rest_api_port", str(rest_port), "--port", "0"]
    command += [flag.replace(CONFIG_DIR, str(config)) for flag in flags]
    url = f"http://127.0.0.1:{rest_port}"

    def serving() -> bool:
        return requests.get(url + STATUS_PATH, timeout=5).ok

    process = start_until(command, root.parent / "server.log", serving, "the server", 180)
    try:
        yield rest_port, url
    finally:
        stop_server(process, signal.SIGKILL)


def test_a_fresh_clusters_config_serves_and_its_probes_pass(objects, cluster_config_server):
    rest_port, url = cluster_config_server
    assert requests.get(url + STATUS_PATH, timeout=5).status_code == 200  # startup, liveness
    assert readiness(objects, rest_port).returncode == 0
    for label in ("stable", "canary"):  # as committed, both answer from version 1
        metadata = requests.get(f"{url}{STATUS_PATH}/labels/{label}/metadata", timeout=5)
        assert metadata.json()["model_spec"]["version"] == "1", metadata.text


# --- Services, replicas, disruptions, autoscaling ----------------------------------------------


def test_services_select_their_pods_on_named_ports(objects):
    serving_ports = {"grpc": settings.GRPC_PORT, "rest": settings.REST_API_PORT}
    for name, ports in [("serving", serving_ports), ("client", {"http": settings.CLIENT_PORT})]:
        service = only(objects, "Service", name)
        deployment = only(objects, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
        for p in service["spec"]["ports"]:
            assert port(container(deployment, name), p["targetPort"]) == p["port"]


def test_serving_scales_from_two_replicas_and_loses_one_at_most(objects):
    deployment = only(objects, "Deployment", "serving")
    # The autoscaler owns the count: a `replicas:` would be re-applied over it.
    assert "replicas" not in deployment["spec"]
    hpa = only(objects, "HorizontalPodAutoscaler", "serving")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "serving")
    assert hpa["spec"]["minReplicas"] == 2 <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    resources = container(deployment, "serving")["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and set(resources["limits"])
    pdb = only(objects, "PodDisruptionBudget", "serving")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1 < hpa["spec"]["minReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# --- The client ---------------------------------------------------------------------------------


def test_the_client_asks_the_serving_service(objects):
    client = container(only(objects, "Deployment", "client"), "client")
    url = urlparse(env(client)["TF_SERVING_URL"])
    service = only(objects, "Service", "serving")
    rest = {p["name"]: p["port"] for p in service["spec"]["ports"]}["rest"]
    assert (url.scheme, url.hostname, url.port) == ("http", "serving", rest)
    assert url.hostname == service["metadata"]["name"]
    assert rest == settings.REST_API_PORT


def test_the_client_command_listens_on_its_container_port(objects, tmp_path):
    """The image's CMD with the pod's environment: Streamlit on CLIENT_PORT, all interfaces."""
    client = container(only(objects, "Deployment", "client"), "client")
    assert "command" not in client and "args" not in client  # the image's CMD runs
    command = instruction(ROOT / "client" / "Dockerfile", "CMD")
    result = run_with_stand_in(["/bin/sh", "-c", command], "streamlit", env(client), tmp_path)
    assert result.returncode == 0, result.stderr
    argv = result.stdout.splitlines()
    assert argv[:2] == ["run", "client"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert int(options["--server.port"]) == port(client, "http") == settings.CLIENT_PORT
    assert options["--server.address"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe"):
        assert client[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}


def test_a_browser_stays_on_one_client_pod(objects):
    """Streamlit keeps a session (and its uploaded photos) in one pod's memory."""
    assert only(objects, "Deployment", "client")["spec"]["replicas"] > 1
    assert only(objects, "Service", "client")["spec"]["sessionAffinity"] == "ClientIP"


# --- The feedback store: one PostgreSQL for every replica, its URL and password from a Secret --


RUNBOOK = ROOT / "docs" / "kubernetes.md"
STORE_USERS = {"Deployment/client", "Job/train", "CronJob/train-feedback"}
# A database URL's password (postgresql://user:PASSWORD@host...), and what stands for one in docs.
URL_PASSWORD = re.compile(r"postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:([^@\s]+)@")
PLACEHOLDER = re.compile(r"\$\{?\w+\}?|<[^>]+>|password|PASSWORD")


def store_settings(objects: dict) -> dict[str, dict]:
    """Each FEEDBACK_DB a container gets, as "Kind/name" -> its env entry."""
    found = {}
    for (kind, name), obj in objects.items():
        for spec in containers(obj):
            for entry in spec.get("env", []):
                if entry["name"] == "FEEDBACK_DB":
                    found[f"{kind}/{name}"] = entry
    return found


def secret_ref(spec: dict, variable: str) -> dict:
    (entry,) = [e for e in spec["env"] if e["name"] == variable]
    assert "value" not in entry, f"{variable} is written in the manifest"
    return entry["valueFrom"]["secretKeyRef"]


def runbook_secret(text: str) -> tuple[str, str, dict[str, str]]:
    """The `kubectl -n NS create secret generic NAME --from-literal=KEY=VALUE...` a document
    gives: (namespace, name, {key: value})."""
    text = text.replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if "create secret generic" in line]
    words = shlex.split(line[line.index("kubectl") :], posix=False)
    assert words[:2] == ["kubectl", "-n"] and words[3:6] == ["create", "secret", "generic"]
    literals = dict(
        w.removeprefix("--from-literal=").split("=", 1)
        for w in words[6:]
        if w.startswith("--from-literal=")
    )
    return words[2], words[6], literals


def database(objects: dict) -> tuple[dict, dict, dict]:
    """The database's StatefulSet, its postgres container and its Service."""
    statefulset = only(objects, "StatefulSet", "feedback-db")
    return statefulset, container(statefulset, "postgres"), only(objects, "Service", "feedback-db")


def test_the_app_and_every_training_read_the_store_from_one_secret_key(objects):
    """Every replica and Job shares one store; a missing Secret stops the pod (it says which),
    never a quiet SQLite file inside it (.env's default, what the images fall back to)."""
    found = store_settings(objects)
    assert set(found) == STORE_USERS
    refs = {where: secret_ref({"env": [entry]}, "FEEDBACK_DB") for where, entry in found.items()}
    assert len({(r["name"], r["key"]) for r in refs.values()}) == 1, refs
    assert not any(r.get("optional") for r in refs.values())
    assert "://" not in settings.read_env()["FEEDBACK_DB"]  # why it must never be left unset
    # The database takes its password from the same Secret, and the Secret is not in the build.
    _, postgres, _ = database(objects)
    password = secret_ref(postgres, "POSTGRES_PASSWORD")
    (url,) = {r["name"] for r in refs.values()}
    assert password["name"] == url and not password.get("optional")
    assert not [o for (kind, _), o in objects.items() if kind == "Secret"]


def test_the_runbooks_secret_is_the_one_the_pods_read(objects):
    """The runbook's and the README's `kubectl create secret`: its namespace, name and keys."""
    refs = [secret_ref({"env": [e]}, "FEEDBACK_DB") for e in store_settings(objects).values()]
    refs = {(r["name"], r["key"]) for r in refs}
    _, postgres, _ = database(objects)
    password = secret_ref(postgres, "POSTGRES_PASSWORD")
    for path in (RUNBOOK, ROOT / "README.md"):
        namespace, name, literals = runbook_secret(path.read_text())
        assert namespace == kustomization(K8S)["namespace"], path.name
        (store,) = refs
        assert {(name, key) for key in literals} == {store, (password["name"], password["key"])}
        # One password in both keys: the database's and the one in the store's URL.
        assert urlparse(literals[store[1]]).password == literals[password["key"]] == "$PASSWORD"
        assert "PASSWORD=$(openssl rand -hex" in path.read_text(), path.name


def test_the_runbooks_url_names_the_database_service(objects):
    """host: the Service; port: the Service's and the container's; user and database: those the
    image creates (POSTGRES_USER, POSTGRES_DB)."""
    from feedback.store import store_url

    statefulset, postgres, service = database(objects)
    _, _, literals = runbook_secret(RUNBOOK.read_text())
    url = urlparse(literals["url"])
    (service_port,) = service["spec"]["ports"]
    assert url.scheme == "postgresql"
    assert url.hostname == service["metadata"]["name"] == statefulset["spec"]["serviceName"]
    assert url.port == service_port["port"] == port(postgres, service_port["name"])
    assert service["spec"]["clusterIP"] == "None"  # a headless Service: no port mapping
    assert url.username == env(postgres)["POSTGRES_USER"]
    assert url.path == f"/{env(postgres)['POSTGRES_DB']}"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert statefulset["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    # The store reads it as PostgreSQL through psycopg, at that host and database.
    parsed = store_url(literals["url"])
    assert (parsed.drivername, parsed.host, parsed.port, parsed.database) == (
        "postgresql+psycopg",
        url.hostname,
        url.port,
        url.path[1:],
    )


def test_the_database_keeps_its_data_in_its_own_volume(objects):
    statefulset, postgres, _ = database(objects)
    assert statefulset["spec"]["replicas"] == 1
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (mount,) = postgres["volumeMounts"]
    assert mount["name"] == claim["metadata"]["name"]
    # The official image from 18 on keeps PGDATA in /var/lib/postgresql/<major>/docker, under
    # the volume it declares, /var/lib/postgresql (mounted lower, the data would stay in the
    # container and go with it).
    name, tag, _ = split_image(postgres["image"])
    assert name == "postgres" and int(tag.split(".")[0]) >= 18
    assert mount["mountPath"] == "/var/lib/postgresql" and "PGDATA" not in env(postgres)
    # A fast shutdown before SIGTERM, which postgres would take as a wait for every client.
    assert postgres["lifecycle"]["preStop"]["exec"]["command"][:2] == ["pg_ctl", "stop"]
    assert "--mode=fast" in postgres["lifecycle"]["preStop"]["exec"]["command"]


def test_the_feedback_training_is_the_training_job_with_feedback(objects, monkeypatch):
    """The CronJob's pod is the Job's with `--feedback --from-version latest`: the same image,
    store, volumes and resources; suspended, so it runs only when started."""
    from train.__main__ import parse_args

    job = copy.deepcopy(only(objects, "Job", "train")["spec"])
    cron = only(objects, "CronJob", "train-feedback")
    assert cron["spec"]["suspend"] is True and cron["spec"]["concurrencyPolicy"] == "Forbid"
    feedback = copy.deepcopy(cron["spec"]["jobTemplate"]["spec"])
    job_args = container({"kind": "Job", "spec": job}, "train").pop("args")
    feedback_args = container({"kind": "Job", "spec": feedback}, "train").pop("args")
    for spec, name in ((job, "train"), (feedback, "train-feedback")):
        assert spec["template"]["metadata"]["labels"].pop("app.kubernetes.io/name") == name
    assert feedback == job
    url = "postgresql://feedback:x@feedback-db:5432/feedback"
    monkeypatch.setenv("FEEDBACK_DB", url)  # what the Secret's key gives the pod
    config = parse_args(feedback_args)
    assert config.feedback == url and config.from_version == "latest"
    assert config.model_base_path == parse_args(job_args).model_base_path
    assert [a for a in feedback_args if a not in ("--feedback", "--from-version", "latest")] == (
        job_args
    )
    runbook = RUNBOOK.read_text()
    assert "create job --from=cronjob/train-feedback" in runbook


def passwords_in(text: str) -> list[str]:
    found = [m.group(1) for m in URL_PASSWORD.finditer(text)]
    return [password for password in found if not PLACEHOLDER.fullmatch(password)]


def test_no_password_is_in_the_repository():
    """Not in a manifest (no Secret, no POSTGRES_PASSWORD value), nor in a database URL in the
    product's files and docs (the tests make their own throwaway ones)."""
    assert passwords_in("postgresql://feedback:hunter2@feedback-db:5432/feedback") == ["hunter2"]
    assert passwords_in("url=postgresql://feedback:$PASSWORD@feedback-db:5432/feedback") == []
    for folder in (K8S, GCS):
        for path in folder.glob("*.yaml"):
            for obj in load_yaml_documents(path):
                assert obj["kind"] != "Secret", path
                for spec in containers(obj):
                    assert "POSTGRES_PASSWORD" not in env(spec), path
    skip = {".git", ".venv", "tests", "models", "runs", "data", "node_modules"}
    checked = 0
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if skip & set(parts) or not path.is_file() or path.suffix in (".png", ".json", ".gz"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        assert not passwords_in(text), f"{path.relative_to(ROOT)}: a database password"
        checked += 1
    assert checked > 50


@pytest.fixture(scope="module")
def feedback_db_server(objects):
    """A real PostgreSQL set up as the database pod sets itself up: its user as the superuser,
    the runbook's kind of password, its database; yields (port, password)."""
    import psycopg

    _, postgres, _ = database(objects)
    values = env(postgres)
    password = secrets.token_hex(24)  # as `openssl rand -hex 24`
    with postgres_server(user=values["POSTGRES_USER"], password=password) as url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{values["POSTGRES_DB"]}"')
        yield urlparse(url).port, password


def runbook_url(port_: int, password: str) -> str:
    """The runbook's store URL with the password, at this test's server."""
    _, _, literals = runbook_secret(RUNBOOK.read_text())
    url = urlparse(literals["url"].replace("$PASSWORD", password))
    netloc = url.netloc.replace(f"{url.hostname}:{url.port}", f"127.0.0.1:{port_}")
    return url._replace(netloc=netloc).geturl()


def add_drawing(store, label: str) -> int:
    import cv2
    import numpy as np

    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    png = cv2.imencode(".png", cv2.resize(digit, (280, 280)))[1].tobytes()
    return store.add(png, [digit], label, "canvas", model_version=1)


def test_the_store_opens_with_the_runbooks_url_and_replicas_share_it(feedback_db_server):
    from feedback.store import StoreError, open_store

    port_, password = feedback_db_server
    url = runbook_url(port_, password)
    first, second = open_store(url), open_store(url)  # two app replicas
    try:
        before = second.count()
        add_drawing(first, "7")
        assert second.count() == before + 1
        assert password not in first.where
    finally:
        first.close()
        second.close()
    with pytest.raises(StoreError, match="password authentication failed") as error:
        open_store(runbook_url(port_, "not-" + password))
    assert password not in str(error.value)


def test_the_databases_readiness_probe_asks_the_server(objects, feedback_db_server):
    """pg_isready as the probe runs it, at this test's port: ready, and not when nothing
    listens."""
    _, postgres, _ = database(objects)
    command = postgres["readinessProbe"]["exec"]["command"]
    port_, _ = feedback_db_server
    path = {"PATH": f"{POSTGRES_BIN}:/usr/bin:/bin"}

    def probe(at: int) -> int:
        moved = [re.sub(r"^--port=\d+$", f"--port={at}", part) for part in command]
        assert moved != command
        return subprocess.run(moved, capture_output=True, timeout=20, env=path).returncode

    assert probe(port_) == 0
    assert probe(free_port()) != 0


def test_the_runbooks_backup_restores_the_store(feedback_db_server, tmp_path):
    """The runbook's backup and restore lines, run as `kubectl exec` runs them in the pod (here
    against this test's server): a restore brings back what the backup held."""
    from feedback.store import open_store

    port_, password = feedback_db_server
    text = RUNBOOK.read_text()

    def in_pod(program: str) -> list[str]:
        (line,) = [line for line in text.splitlines() if f"-- {program} " in line]
        words = shlex.split(line)
        assert words[0] == "kubectl" and "feedback-db-0" in words
        command = words[words.index("--") + 1 :]
        return command[: command.index(">" if ">" in command else "<")]

    variables = {"PATH": f"{POSTGRES_BIN}:/usr/bin:/bin", "PGHOST": "127.0.0.1"}
    variables |= {"PGPORT": str(port_), "PGPASSWORD": password}
    store = open_store(runbook_url(port_, password))
    try:
        add_drawing(store, "4")
        kept = store.digits()
        dump = tmp_path / "feedback.dump"
        with open(dump, "wb") as out:
            subprocess.run(in_pod("pg_dump"), stdout=out, env=variables, check=True, timeout=60)
        store.delete_all()
        assert store.count() == 0
        with open(dump, "rb") as backup:
            command = in_pod("pg_restore")
            restored = subprocess.run(
                command, stdin=backup, env=variables, capture_output=True, text=True, timeout=60
            )
        assert restored.returncode == 0, restored.stderr
    finally:
        store.close()
    again = open_store(runbook_url(port_, password))
    try:
        back = again.digits()
        assert back.labels.tolist() == kept.labels.tolist()
        assert (back.images == kept.images).all()
    finally:
        again.close()


# --- The gs:// overlay ------------------------------------------------------------------------


def test_gcs_serving_reads_the_bucket_and_training_writes_it(gcs_objects):
    deployment = only(gcs_objects, "Deployment", "serving")
    config = models_config(config_map_files(gcs_objects, deployment, "config")["models.config"])
    assert_same_models(config, other_base_path=True)
    base_path = config.model_config_list.config[0].base_path
    match = re.fullmatch(rf"gs://([^/]+)/{settings.MODEL_NAME}", base_path)
    assert match, base_path
    # No store volume left: no claim, nothing mounted at /models in the servers.
    assert not [o for (kind, _), o in gcs_objects.items() if kind == "PersistentVolumeClaim"]
    workloads = [o for o in gcs_objects.values() if o["kind"] in ("Deployment", "Job", "CronJob")]
    pods = [spec for o in workloads for spec in pod_specs(o)]
    assert all("persistentVolumeClaim" not in v for spec in pods for v in spec.get("volumes", []))
    assert "/models" not in {
        m["mountPath"] for m in container(deployment, "serving")["volumeMounts"]
    }
    job = only(gcs_objects, "Job", "train")
    train = container(job, "train")
    (store,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "csi" in v]
    assert store["csi"]["driver"] == "gcsfuse.csi.storage.gke.io"
    assert store["csi"]["volumeAttributes"]["bucketName"] == match.group(1)
    mounted = {m["name"]: m["mountPath"] for m in train["volumeMounts"]}
    assert f"{mounted[store['name']]}/{settings.MODEL_NAME}" == train["args"][-1]
    assert job["spec"]["template"]["metadata"]["annotations"]["gke-gcsfuse/volumes"] == "true"
    # The feedback training writes the same bucket the same way.
    cron = only(gcs_objects, "CronJob", "train-feedback")["spec"]["jobTemplate"]["spec"]
    assert cron["template"]["spec"]["volumes"] == job["spec"]["template"]["spec"]["volumes"]
    assert (
        cron["template"]["metadata"]["annotations"]
        == job["spec"]["template"]["metadata"]["annotations"]
    )
    for obj in (deployment, job):
        assert obj["spec"]["template"]["spec"]["serviceAccountName"] == "models"
    assert ("ServiceAccount", "models") in gcs_objects


def test_a_patch_whose_test_fails_stops_the_build(tmp_path):
    """The overlay's JSON patches test what they remove: a reordered base fails loudly."""
    base = tmp_path / "deploy" / "k8s"
    shutil.copytree(K8S, base)
    shutil.copytree(SERVING, tmp_path / "serving")  # the base's component
    deployment = base / "serving-deployment.yaml"
    (obj,) = load_yaml_documents(deployment)
    obj["spec"]["template"]["spec"]["volumes"].reverse()
    deployment.write_text(yaml.safe_dump(obj))
    overlay = tmp_path / "deploy" / "k8s-gcs"
    shutil.copytree(GCS, overlay)
    result = kustomize(overlay)
    assert result.returncode != 0 and "testing value" in result.stderr, result.stderr
    assert build(base)  # the base itself is fine


def test_docs_name_the_commands_that_exist():
    """docs/kubernetes.md's runbook uses these folders, names and labels."""
    docs = (ROOT / "docs" / "kubernetes.md").read_text()
    namespace = kustomization(K8S)["namespace"]
    assert "kubectl apply -k deploy/k8s" in docs and "kubectl apply -k deploy/k8s-gcs" in docs
    assert f"-n {namespace}" in docs
    for name in ("job/train", "deployment/serving", "service/client"):
        assert name in docs, name
    for image in kustomization(K8S)["images"]:
        assert f"{image['name']}" in docs
    assert "serving/models.config" in docs and "serving-config/" not in docs
