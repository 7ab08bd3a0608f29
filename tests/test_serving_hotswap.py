"""Versions under load: `python -m serving` run for real, its model folder changed while it serves.

One server process for the module (config file with --models_root, batching on, 0.2 s polls).
The tests run in order: two new versions arrive and an old one is deleted while REST and gRPC
clients keep sending requests, then a corrupt version arrives, then the config file moves a
label, then a good export replaces the corrupt one, then Ctrl-C.
"""

import os
import re
import shutil
import signal
import sys
import threading
import time
from datetime import datetime

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import free_port, start_until, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

POLL = 0.2  # seconds, for both the model folder and the config file
SLACK = 2.0  # seconds: our own status polling and a loaded 2-core machine's scheduling
CONFIG = """
model_config_list {{
  config {{
    name: "mnist"
    base_path: "/models/mnist"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
    version_labels {{ key: "stable" value: {stable} }}
  }}
}}
"""
BATCHING = "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\n"


class Server:
    def __init__(self, root, config, log, process, port, grpc_port):
        self.root, self.config, self.log, self.process = root, config, log, process
        self.url = f"http://127.0.0.1:{port}"
        self.grpc_address = f"127.0.0.1:{grpc_port}"
        self.base = root / "mnist"

    def get(self, path: str):
        return requests.get(self.url + path, timeout=30)

    def latest_version(self) -> int:
        return int(self.get("/v1/models/mnist/metadata").json()["model_spec"]["version"])

    def export(self, version: int, corrupt: bool = False) -> None:
        """As export/ writes a version: a dot-folder filled, then renamed to its number."""
        tmp = self.base / f".export-{version}"
        if corrupt:
            tmp.mkdir()
            (tmp / "saved_model.pb").write_bytes(b"this is not a SavedModel")
        else:
            shutil.copytree(self.base / ".original", tmp)
        tmp.rename(self.base / str(version))

    def load_seconds(self, version: int) -> float:
        """How long the server took to load and warm up a version, from its own log."""
        text = self.log.read_text()
        times = []
        for event in ("Loading servable version", "Successfully loaded servable version"):
            line = re.search(
                rf"^(\S+ \S+) I serving\] {event} \{{name: mnist version: {version}\}}",
                text,
                re.MULTILINE,
            )
            assert line, f"no '{event}' for version {version} in the log"
            times.append(datetime.strptime(line.group(1), "%Y-%m-%d %H:%M:%S.%f"))
        return (times[1] - times[0]).total_seconds()


@pytest.fixture(scope="module")
def server(tiny_model_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("hotswap") / "models"
    shutil.copytree(tiny_model_base / "1", root / "mnist" / ".original")
    shutil.copytree(tiny_model_base / "1", root / "mnist" / "1")
    config = root.parent / "models.config"
    config.write_text(CONFIG.format(stable=1))
    batching = root.parent / "batching.config"
    batching.write_text(BATCHING)
    log = root.parent / "server.log"
    port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "serving", "--model_config_file", str(config)]
    command += ["--models_root", str(root), "--rest_api_port", str(port)]
    command += ["--port", str(grpc_port)]
    command += ["--file_system_poll_wait_seconds", str(POLL)]
    command += ["--model_config_file_poll_wait_seconds", str(POLL)]
    command += ["--enable_batching", "--batching_parameters_file", str(batching)]
    command += ["--allow_version_labels_for_unavailable_models", "--max_num_load_retries", "0"]

    def available() -> bool:
        status = requests.get(f"http://127.0.0.1:{port}/v1/models/mnist", timeout=30)
        return b'"AVAILABLE"' in status.content

    process = start_until(command, log, available, "the server", 180)
    try:
        yield Server(root, config, log, process, port, grpc_port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_new_versions_replace_the_old_under_load_without_a_failed_request(server):
    body = {"instances": [[[[0.5]] * 28] * 28]}
    stop, answers, grpc_versions, problems = threading.Event(), [], [], []

    def client():
        with requests.Session() as session:  # keep-alive, as real clients
            while not stop.is_set():
                try:
                    response = session.post(
                        server.url + "/v1/models/mnist:predict", json=body, timeout=30
                    )
                    answers.append(response.status_code)
                    if response.status_code != 200:
                        problems.append(response.text)
                except requests.RequestException as e:
                    problems.append(repr(e))

    def grpc_client():
        """The same request over gRPC: the swap is the same event for both APIs."""
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs["image"].CopyFrom(
            tf.make_tensor_proto(np.full((1, 28, 28, 1), 0.5, np.float32))
        )
        with grpc.insecure_channel(server.grpc_address) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                try:
                    response = stub.Predict(request, 30)
                    grpc_versions.append(response.model_spec.version.value)
                except grpc.RpcError as e:
                    problems.append(f"gRPC {e.code()}: {e.details()}")

    clients = [threading.Thread(target=client) for _ in range(3)]
    clients += [threading.Thread(target=grpc_client) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        for version in (2, 3):
            exported = time.monotonic()
            server.export(version)
            wait_for(lambda v=version: server.latest_version() == v, what=f"version {version}")
            took = time.monotonic() - exported
            assert took <= POLL + server.load_seconds(version) + SLACK
        shutil.rmtree(server.base / "1")  # an old version deleted while serving
        time.sleep(5 * POLL)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    assert answers and not problems, problems[:3]
    assert grpc_versions[0] == 1 and grpc_versions[-1] == 3  # the reply names who answered
    states = {
        e["version"]: e["state"]
        for e in server.get("/v1/models/mnist").json()["model_version_status"]
    }
    assert states == {"3": "AVAILABLE", "2": "END", "1": "END"}


def test_a_corrupt_version_fails_and_the_serving_version_keeps_serving(server):
    server.export(4, corrupt=True)
    status = wait_for(
        lambda: (
            (s := server.get("/v1/models/mnist/versions/4").json())
            and s.get("model_version_status", [{}])[0].get("state") == "END"
            and s
        ),
        what="version 4 to fail",
    )
    path = server.base / "4" / "saved_model.pb"
    assert status == {
        "model_version_status": [
            {
                "version": "4",
                "state": "END",
                "status": {
                    "error_code": "DATA_LOSS",
                    "error_message": f"Can't parse {path} as binary proto",
                },
            }
        ]
    }
    assert "Loading servable: {name: mnist version: 4} failed" in server.log.read_text()
    response = requests.post(
        server.url + "/v1/models/mnist:predict",
        json={"instances": [[[[0.0]] * 28] * 28]},
        timeout=30,
    )
    assert response.status_code == 200
    assert server.latest_version() == 3


def label_version(server) -> int | None:
    response = server.get("/v1/models/mnist/labels/stable/metadata")
    return int(response.json()["model_spec"]["version"]) if response.status_code == 200 else None


def test_labels_follow_the_config_file(server):
    server.config.write_text(CONFIG.format(stable=3))
    wait_for(lambda: label_version(server) == 3, what="label stable to move to 3")
    # A label may move only to an AVAILABLE version: TF Serving rejects the reload, keeps the old.
    server.config.write_text(CONFIG.format(stable=2))
    wait_for(
        lambda: "Request to assign label to version 2 of model mnist" in server.log.read_text(),
        what="the refused reload in the log",
    )
    assert label_version(server) == 3


def test_a_good_export_in_place_of_the_failed_version_loads_on_the_next_poll(server):
    # Version 4 failed above; someone removes the bad copy and exports 4 again, as the trainer
    # does (it picks the highest number plus one).
    shutil.rmtree(server.base / "4")
    server.export(4)
    wait_for(lambda: server.latest_version() == 4, what="the new version 4")
    assert "Version 4 of mnist is a new folder since it failed to load" in server.log.read_text()


def test_ctrl_c_stops_cleanly(server):
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=30) == 0
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "Stopping the server." in log
    assert os.path.exists(server.base / "4")
