"""TF Serving's error codes, their HTTP statuses, and the error every request failure raises."""

from dataclasses import dataclass

# model_servers/http_server.cc ToHTTPStatusCode(): internal code -> HTTP status.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


@dataclass
class ServingError(Exception):
    """A request failure: TF Serving's status code name and its message."""

    code: str
    message: str

    def __str__(self) -> str:
        # absl::Status::ToString(), used when TF Serving nests one error in another.
        return f"{self.code}: {self.message}"


def invalid(*parts: object) -> ServingError:
    return ServingError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def not_found(*parts: object) -> ServingError:
    return ServingError("NOT_FOUND", "".join(str(p) for p in parts))
