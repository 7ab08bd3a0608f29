"""`python -m serving`: the local TF-Serving-compatible server, REST and gRPC.

Takes tensorflow_model_server's flags for what it supports, e.g.

    python -m serving --model_config_file serving/models.config --models_root models
    python -m serving --model_name mnist --model_base_path models/mnist --enable_batching

One extension of ours: --models_root, the local folder docker compose mounts at /models, so the
very same serving/models.config (base_path /models/mnist) works on a machine without /models.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import settings

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath

log = logging.getLogger("serving")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=settings.GRPC_PORT, help="gRPC port (0: none)")
    p.add_argument(
        "--grpc_host",
        default="127.0.0.1",
        help="ours: the address gRPC listens on, loopback unless asked (TF Serving: 0.0.0.0)",
    )
    p.add_argument("--grpc_socket_path", default="", help="also serve gRPC on this UNIX socket")
    p.add_argument("--grpc_channel_arguments", default="", help="key=value,... for gRPC")
    p.add_argument("--grpc_max_threads", type=int, default=0, help="0: 4 per CPU, as TF Serving")
    p.add_argument("--rest_api_port", type=int, default=settings.REST_API_PORT)
    p.add_argument(
        "--rest_api_host",
        default="127.0.0.1",
        help="address to listen on (ours: loopback unless asked, e.g. 0.0.0.0)",
    )
    p.add_argument(
        "--rest_api_num_threads",
        type=int,
        default=0,
        help="threads for model calls without batching (0: 4 per CPU, as TF Serving)",
    )
    p.add_argument("--model_name", default=settings.MODEL_NAME)
    p.add_argument("--model_base_path", type=Path, default=settings.MODEL_BASE_PATH)
    p.add_argument("--model_config_file", type=Path, help="text ModelServerConfig proto")
    p.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0)
    p.add_argument("--file_system_poll_wait_seconds", type=float, default=1)
    switch = {"type": _bool, "nargs": "?", "const": True, "default": False}  # --flag[=true|false]
    p.add_argument("--enable_batching", **switch)
    p.add_argument("--batching_parameters_file", type=Path)
    p.add_argument("--monitoring_config_file", type=Path)
    p.add_argument("--allow_version_labels_for_unavailable_models", **switch)
    p.add_argument("--max_num_load_retries", type=int, default=5)
    p.add_argument("--load_retry_interval_micros", type=int, default=60 * 1000 * 1000)
    p.add_argument(
        "--models_root",
        type=Path,
        help="ours: local folder standing in for /models in the config's base paths",
    )
    p.add_argument(
        "--rest_api_max_body_bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="ours: larger request bodies get 413 (TF Serving has no limit)",
    )
    return p.parse_args(argv)


def read_models(args: argparse.Namespace):
    from serving.config import ModelConfig, read_model_config_file

    if args.model_config_file is not None:
        return read_model_config_file(args.model_config_file, args.models_root)
    return [ModelConfig(args.model_name, Path(args.model_base_path).resolve())]


def watch_config(args: argparse.Namespace, manager, stop: threading.Event) -> None:
    """--model_config_file_poll_wait_seconds: re-read the config; a bad one leaves the old one."""
    from serving.status import ServingError

    last_text, last_ok = args.model_config_file.read_text(), True
    while not stop.wait(args.model_config_file_poll_wait_seconds):
        try:
            text = args.model_config_file.read_text()
            if text == last_text and last_ok:
                continue
            last_text, last_ok = text, False
            manager.reload_config(read_models(args))
            last_ok = True
            log.info("Successfully reloaded config file %s", args.model_config_file)
        except (OSError, ValueError, ServingError) as e:
            log.error(
                "Failed to reload config file %s; keeping the old config: %s",
                args.model_config_file,
                e,
            )


def build_manager(args: argparse.Namespace):
    """The model manager the flags ask for, and the Prometheus path (None: no metrics page)."""
    from serving.config import read_batching_parameters, read_prometheus_path
    from serving.versions import Manager

    models = read_models(args)
    batching = (
        read_batching_parameters(args.batching_parameters_file) if args.enable_batching else None
    )
    prometheus = read_prometheus_path(args.monitoring_config_file, PROMETHEUS_PATH)
    manager = Manager(
        models,
        poll_seconds=args.file_system_poll_wait_seconds,
        batching=batching,
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
        max_load_retries=args.max_num_load_retries,
        load_retry_interval=args.load_retry_interval_micros / 1e6,
    )
    return manager, prometheus


def start_grpc(args: argparse.Namespace, manager, metrics):
    """The gRPC server on --port and --grpc_socket_path, or None with neither (--port 0)."""
    from serving.config import models_from_proto
    from serving.grpc_server import DEFAULT_MAX_THREADS, GrpcServer

    addresses = [f"{args.grpc_host}:{args.port}"] if args.port else []
    if args.grpc_socket_path:
        addresses.append(f"unix:{args.grpc_socket_path}")
    if not addresses:
        return None
    server = GrpcServer(
        addresses,
        manager,
        metrics,
        lambda config: models_from_proto(config, args.models_root),
        args.grpc_max_threads or DEFAULT_MAX_THREADS,
        args.grpc_channel_arguments,
    )
    for address in addresses:
        log.info("Running gRPC ModelServer at %s ...", address.removeprefix("unix:"))
    return server


def start_rest(args: argparse.Namespace, manager, metrics, prometheus: str | None):
    from serving.rest import DEFAULT_NUM_THREADS, RestServer

    try:
        return RestServer(
            (args.rest_api_host, args.rest_api_port),
            manager,
            metrics,
            prometheus,
            args.rest_api_max_body_bytes,
            args.rest_api_num_threads or DEFAULT_NUM_THREADS,
        )
    except OSError as e:
        raise OSError(f"cannot listen on {args.rest_api_host}:{args.rest_api_port}: {e}") from e


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as cleanly as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname).1s serving] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's own chatter, not our version events

    from serving.metrics import Metrics
    from serving.status import ServingError

    try:
        manager, prometheus = build_manager(args)
    except (OSError, ValueError, ServingError) as e:
        log.error("Failed to start server. Error: %s", e)
        return 1

    stop = threading.Event()
    metrics = Metrics()
    signal.signal(signal.SIGTERM, _interrupt)
    server = grpc_server = None
    try:
        manager.poll()  # the first versions load before the ports open, as in TF Serving
        manager.start()
        grpc_server = start_grpc(args, manager, metrics)
        server = start_rest(args, manager, metrics, prometheus)
        if args.model_config_file is not None and args.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=watch_config, args=(args, manager, stop), daemon=True).start()
        log.info("Exporting HTTP/REST API at:%s:%d ...", *server.server_address[:2])
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("Stopping the server.")
    except OSError as e:
        log.error("Failed to start server: %s", e)
        return 1
    finally:
        # A second Ctrl-C (or the launcher's SIGTERM) while shutting down must not interrupt it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
        if server is not None:
            server.server_close()
        if grpc_server is not None:
            grpc_server.stop(grace=1)
        manager.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
