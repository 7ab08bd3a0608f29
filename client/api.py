"""Talking to a TF Serving REST endpoint (the official server or ours): status, labels, predict.

Only REST and `requests`, no TensorFlow, so the client works unchanged against either server.
Every failure becomes a `ServingError` whose message can be shown to a person as it is.

Labels: TF Serving's REST API has no endpoint that lists labels, and model status ignores a label
in the path (get_model_status_impl.cc reads only the version), so `GET /labels/<l>` cannot tell
whether a label exists. Metadata does resolve it: `GET /v1/models/<m>/labels/<l>/metadata`
answers with `model_spec.version`, the version the label points to, or 400 "Unrecognized
servable version label". The client probes the labels this product uses (`LABELS`) that way.

Predictions go to the model's `predict_image` signature: each digit as an encoded image (the
client's crop, a PNG), which the model normalises into the 28x28 digit it reads, in its own graph
(export/image_preprocessing.py). The answer holds that 28x28 image too, to show what it saw, and
the version's own decision whether each image is a digit at all (`is_digit`, `digit_score`);
versions exported before they answered it take every image for a digit.

Which version answered: a REST predict answer does not name its version. Just after it the
client asks the same path's metadata (`answered_by`), whose `model_spec.version` is the version
that path resolves to (the newest loaded one for "latest"); the page shows the answer first.
Asked at the same time as the predict, it slowed the predict down. A version swap between the
two requests could make that stale; `Prediction.version_source` says how it was found.
"""

import base64
import math
import os
import threading
from dataclasses import dataclass, replace
from urllib.parse import quote

import numpy as np
import requests

import settings

LATEST = "latest"
# The labels this product's models.config uses (serving/models.config).
LABELS = ("stable", "canary")
# Seconds. Status and metadata are small; a predict may wait for a model that is warming up.
STATUS_TIMEOUT = 3.0
PREDICT_TIMEOUT = 10.0
VERSION_NOT_ASKED = "not asked yet"


class ServingError(Exception):
    """A failure a person can read: `kind` is unreachable, timeout, not_found, rejected or
    malformed; the message says what happened and, for the server's own errors, its text."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class VersionStatus:
    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING or END
    error: str  # TF Serving's error message for a version that failed to load, else ""


@dataclass
class Prediction:
    probabilities: np.ndarray  # (n, 10), one row per image sent; all 0 where it found no ink
    images: np.ndarray  # (n, 28, 28) in 0..1: each digit as the model saw it
    is_digit: np.ndarray  # (n,) bool; all True from a version that does not answer it
    digit_scores: np.ndarray | None  # (n,) in 0..1, higher is more digit-like; None: not answered
    version: int | None  # the version that answered, None when it could not be found out
    version_source: str  # how `version` was found, in words


def default_url() -> str:
    return os.environ.get("TF_SERVING_URL") or settings.DEFAULT_SERVING_URL


def default_model() -> str:
    return os.environ.get("MODEL_NAME") or settings.MODEL_NAME


def model_path(url: str, model: str, target: str = LATEST) -> str:
    """The URL of a model, a version (target "3") or a label (target "stable")."""
    path = f"{url.rstrip('/')}/v1/models/{quote(model, safe='')}"
    if target == LATEST:
        return path
    if target.isdigit():
        return f"{path}/versions/{int(target)}"
    return f"{path}/labels/{quote(target, safe='')}"


def get_versions(url: str, model: str, timeout: float = STATUS_TIMEOUT) -> list[VersionStatus]:
    """Every version the server knows of the model, newest first (GET /v1/models/<m>)."""
    body = _request("GET", model_path(url, model), url, timeout)
    try:
        versions = [
            VersionStatus(
                version=int(entry["version"]),
                state=str(entry["state"]),
                error=str(entry.get("status", {}).get("error_message", "")),
            )
            for entry in body["model_version_status"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed(url, "model status", body) from e
    return sorted(versions, key=lambda v: v.version, reverse=True)


def get_labels(
    url: str, model: str, labels: tuple[str, ...] = LABELS, timeout: float = STATUS_TIMEOUT
) -> dict[str, int]:
    """The labels that exist among `labels`, each with the version it points to."""
    found = {}
    for label in labels:
        try:
            found[label] = resolve_version(url, model, label, timeout)
        except ServingError as e:
            if e.kind in ("unreachable", "timeout", "malformed"):
                raise
            # 400 "Unrecognized servable version label", or 404 for a label whose version is
            # gone: the label is not usable, so it is not offered.
    return found


def resolve_version(url: str, model: str, target: str, timeout: float = STATUS_TIMEOUT) -> int:
    """The version a path answers from, as the server's metadata reports it."""
    body = _request("GET", model_path(url, model, target) + "/metadata", url, timeout)
    try:
        return int(body["model_spec"]["version"])
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed(url, "model metadata", body) from e


def predict(
    url: str,
    model: str,
    images: list[bytes],
    target: str = LATEST,
    timeout: float = PREDICT_TIMEOUT,
) -> Prediction:
    """The model's answer for encoded images (PNG, JPEG...), one digit each, from exactly the path
    `target` names, through its predict_image signature.

    The answering version is known for a numbered target; for "latest" or a label `version` is
    None until `answered_by` asks the server."""
    body = {
        "signature_name": settings.IMAGE_SIGNATURE_NAME,
        "instances": [{"b64": base64.b64encode(image).decode("ascii")} for image in images],
    }
    try:
        answer = _request("POST", model_path(url, model, target) + ":predict", url, timeout, body)
    except ServingError as e:
        if f'signature name: "{settings.IMAGE_SIGNATURE_NAME}" not found' not in e.message:
            raise
        which = f"Version {target}" if target.isdigit() else f"The version {target} points to"
        raise ServingError(
            "rejected",
            f"{which} has no {settings.IMAGE_SIGNATURE_NAME} signature: it was exported before "
            "models read images themselves. Train a new version with `python -m train`, or "
            "choose another version.",
        ) from e
    read = _read_answer(answer, len(images), url)
    if target.isdigit():
        return Prediction(*read, int(target), "asked for by number")
    return Prediction(*read, None, VERSION_NOT_ASKED)


def answered_by(answer: Prediction, url: str, model: str, target: str) -> Prediction:
    """`answer` with the version that `target` resolves to now, when it does not name one."""
    if answer.version is not None:
        return answer
    try:
        version = resolve_version(url, model, target)
    except ServingError:
        return replace(answer, version_source="the server did not say")
    source = "the newest loaded version" if target == LATEST else f"label {target} points to it"
    return replace(answer, version=version, version_source=f"{source}, per its metadata")


def _read_answer(
    answer: dict, count: int, url: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The `probabilities`, `mnist_image`, `is_digit` and `digit_score` of a row-format answer,
    checked: n rows of 10 finite numbers, n 28x28 images in 0..1, and where the version answers
    them (in every row or in none), n booleans and n numbers in 0..1."""
    rows = answer.get("predictions")
    try:
        _require(isinstance(rows, list) and len(rows) == count)
        _require(all(isinstance(r, dict) for r in rows))
        probabilities, images = [], []
        for row in rows:
            values = row.get("probabilities")
            _require(isinstance(values, list) and len(values) == 10)
            _require(all(isinstance(v, int | float) and math.isfinite(v) for v in values))
            image = np.asarray(row.get("mnist_image"), dtype=np.float32).reshape(28, 28)
            _require(np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1)
            probabilities.append(values)
            images.append(image)
        is_digit = _optional(rows, "is_digit", lambda v: isinstance(v, bool))
        scores = _optional(rows, "digit_score", _is_fraction)
    except (TypeError, ValueError):
        raise _malformed(url, "prediction", answer) from None
    return (
        np.asarray(probabilities, dtype=np.float32),
        np.stack(images),
        np.ones(count, bool) if is_digit is None else np.asarray(is_digit, bool),
        None if scores is None else np.asarray(scores, np.float32),
    )


def _is_fraction(value) -> bool:
    # JSON's true and false are Python's bools, which are ints too: not a score.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    )


def _require(condition) -> None:
    if not condition:
        raise ValueError("not what TF Serving sends")


def _optional(rows: list[dict], key: str, valid) -> list | None:
    """Each row's `key`, every one `valid`; None when no row has it (an older version)."""
    if not any(key in row for row in rows):
        return None
    values = [row.get(key) for row in rows]
    _require(all(valid(v) for v in values))
    return values


_local = threading.local()


def _session() -> requests.Session:
    """This thread's session: its connections stay open between requests (a new one is a TCP
    handshake every time), and a Session is not shared between threads (Streamlit runs each page's
    script on a thread of its own)."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def _send(method: str, full_url: str, timeout: float, body: dict | None) -> requests.Response:
    try:
        return _session().request(method, full_url, json=body, timeout=timeout)
    except requests.exceptions.ConnectionError as e:
        if isinstance(e, requests.exceptions.Timeout):
            raise
        # A kept-open connection that the server closed just as it was reused fails once; a new
        # connection then works (status, metadata and predict are all safe to send again).
        return _session().request(method, full_url, json=body, timeout=timeout)


def _request(method: str, full_url: str, url: str, timeout: float, body: dict | None = None):
    try:
        response = _send(method, full_url, timeout, body)
    except requests.exceptions.Timeout as e:
        raise ServingError(
            "timeout", f"The model server at {url} did not answer within {timeout:g} s."
        ) from e
    except requests.exceptions.InvalidURL as e:
        raise ServingError("unreachable", f"{url!r} is not a valid server URL.") from e
    except (requests.exceptions.ConnectionError, requests.exceptions.MissingSchema) as e:
        raise ServingError(
            "unreachable",
            f"Cannot reach the model server at {url}. Is it running, and is the URL right?",
        ) from e
    except requests.exceptions.RequestException as e:
        raise ServingError("unreachable", f"Cannot talk to the model server at {url}: {e}") from e

    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 200:
        # TF Serving's errors are {"error": "<message>"}; show its own words.
        text = data.get("error") if isinstance(data, dict) else None
        text = text or response.text.strip()[:300] or response.reason
        kind = "not_found" if response.status_code == 404 else "rejected"
        raise ServingError(kind, f"The model server answered {response.status_code}: {text}")
    if not isinstance(data, dict):
        raise _malformed(url, "answer", response.text)
    return data


def _malformed(url: str, what: str, body) -> ServingError:
    shown = str(body)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    return ServingError("malformed", f"The {what} from {url} is not what TF Serving sends: {shown}")
