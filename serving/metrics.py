"""Prometheus text metrics, named and shaped as TF Serving exports them.

TF Serving's counters `/tensorflow/serving/request_count` (model_name, status) and the histogram
`/tensorflow/serving/request_latency` (model_name, API, entrypoint: REST or GRPC; microseconds,
buckets Exponential(10, 1.8, 33)) come out as `:tensorflow:serving:...`
(util/prometheus_exporter.cc). Both APIs count into the same counters.
"""

import bisect
import threading
from collections import defaultdict

_BUCKETS = [10 * 1.8**i for i in range(33)]


def _number(value: float) -> str:
    return f"{value:g}"  # absl::StrCat(double)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def model_label(name: str, served) -> str:
    """The model_name a request is counted under: its model's, if served. Every name a client
    makes up would otherwise get a label of its own and grow the page without bound; they all
    count as ""."""
    return name if name in served else ""


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], list] = {}

    def record(
        self, model: str, api: str, status: str, seconds: float, entrypoint: str = "REST"
    ) -> None:
        micros = seconds * 1e6
        with self._lock:
            self._counts[(model, status)] += 1
            if status != "OK":
                return  # http_server.cc: the latency of answered requests only
            histogram = self._latency.setdefault(
                (model, api, entrypoint), [[0] * (len(_BUCKETS) + 1), 0.0]
            )
            histogram[0][bisect.bisect_left(_BUCKETS, micros)] += 1
            histogram[1] += micros

    def page(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(
                    f':tensorflow:serving:request_count{{model_name="{_label(model)}",'
                    f'status="{status}"}} {count}'
                )
            lines.append("# TYPE :tensorflow:serving:request_latency histogram")
            for (model, api, entrypoint), (buckets, total) in sorted(self._latency.items()):
                labels = f'model_name="{_label(model)}",API="{api}",entrypoint="{entrypoint}"'
                cumulative = 0
                for i, count in enumerate(buckets):
                    cumulative += count
                    limit = _number(_BUCKETS[i]) if i < len(_BUCKETS) else "+Inf"
                    lines.append(
                        f':tensorflow:serving:request_latency_bucket{{{labels},le="{limit}"}} '
                        f"{cumulative}"
                    )
                lines.append(
                    f":tensorflow:serving:request_latency_sum{{{labels}}} {_number(total)}"
                )
                lines.append(f":tensorflow:serving:request_latency_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"
