"""What the HTTP and gRPC front-ends of the v2 protocol share: the extensions we advertise,
the model version, the server version, error → status mapping, what a client may see of
an error, and the request parameters both read (``priority``, ``timeout``).

Clients of unauthenticated endpoints see short messages: no absolute paths, no list of
the models served, no backend exception text; a 5xx names the request id under which the
details were logged.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import grpc

from infer_runtime import __version__
from infer_runtime.errors import (
    BackendError,
    DeadlineExceededError,
    InvalidInputError,
    ModelNotFoundError,
    QueueFullError,
    RequestCancelledError,
    SpecError,
    UnavailableError,
)

from .protocol import ProtocolError

SERVER_VERSION = __version__
EXTENSIONS = ["binary_tensor_data", "schedule_policy", "statistics", "model_configuration", "model_repository"]
MODEL_VERSION = "1"  # one version per model until the registry serves several

MAX_TIMEOUT_US = 10**12
"""A request timeout above this (11.6 days) is treated as "no shorter than the default"."""

_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    500: grpc.StatusCode.INTERNAL,
}


class UnsupportedMediaError(ProtocolError):
    """The body uses an encoding we do not read (HTTP 415)."""


def status_for(exc: BaseException) -> int:
    """Triton's HTTP status for an error; 500 for anything unexpected (our bug)."""
    if isinstance(exc, UnsupportedMediaError):
        return 415
    if isinstance(exc, (ProtocolError, InvalidInputError, SpecError)):
        return 400
    if isinstance(exc, ModelNotFoundError):
        return 404
    if isinstance(exc, (QueueFullError, DeadlineExceededError, UnavailableError, RequestCancelledError)):
        return 503
    return 500


def grpc_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status for an error (never UNKNOWN)."""
    if isinstance(exc, DeadlineExceededError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, QueueFullError):
        return grpc.StatusCode.UNAVAILABLE  # as Triton: clients retry on UNAVAILABLE
    if isinstance(exc, RequestCancelledError):
        return grpc.StatusCode.CANCELLED
    return _GRPC.get(status_for(exc), grpc.StatusCode.INTERNAL)


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` is an error the runtime reports by design (client input, overload,
    a backend failing) rather than a bug in the server: only bugs get tracebacks."""
    return status_for(exc) != 500 or isinstance(exc, BackendError)


_ID_PREFIX = uuid.uuid4().hex[:8]  # unique per process; a counter makes the rest (no syscall per request)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh id for a request that brought none: unique in this process, and across
    processes with high probability."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s/'\"():,;]+)+/([^\s/'\"():,;]+)")
_EXCEPTION_NAME = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exit|Interrupt))\b")


def redact(message: str) -> str:
    """``message`` without absolute paths (each becomes its last component)."""
    return _ABSOLUTE_PATH.sub(r"\1", message)


_PIPELINE_STEP = re.compile(r"pipeline '[^']*', step '[^']*' \(model '[^']*'\)")


def client_message(exc: BaseException, request_id: str | None) -> str:
    """What a client may read of ``exc``: the message of a 4xx/503 without absolute paths;
    for a 5xx only the kind of failure and the request id (the details are logged)."""
    if status_for(exc) != 500:
        return redact(str(exc))
    where = f"; request id {request_id}" if request_id else ""
    if isinstance(exc, BackendError):
        found = _EXCEPTION_NAME.search(str(exc))
        kind = f" ({found.group(1)})" if found else ""
        step = _PIPELINE_STEP.match(str(exc))  # which step failed is the client's business; why is not
        if step:
            return f"{step.group(0)} failed to run this request{kind}{where}; details are in the server log"
        return f"the model failed to run this request{kind}{where}; details are in the server log"
    return f"internal server error{where}; details are in the server log"


def parse_priority(value: Any) -> int:
    """The ``priority`` parameter (an integer; absent = 0)."""
    if value is None:
        return 0
    if type(value) is not int:
        raise ProtocolError("parameter 'priority' must be an integer")
    if not -(2**31) <= value < 2**31:
        raise ProtocolError(f"parameter 'priority' is out of range (got {value})")
    return value


def parse_timeout_ms(value: Any, default_ms: int) -> float | None:
    """The ``timeout`` parameter (µs) as the runtime's ``timeout_ms``, clamped so that a
    request can only shorten the model's ``default_timeout_ms`` (0 = none): None when absent,
    0, or not shorter than the default."""
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ProtocolError("parameter 'timeout' must be a non-negative integer (microseconds)")
    if value == 0 or value > MAX_TIMEOUT_US or (default_ms and value >= default_ms * 1000):
        return None
    return value / 1000


__all__ = [
    "EXTENSIONS", "MAX_TIMEOUT_US", "MODEL_VERSION", "SERVER_VERSION", "UnsupportedMediaError", "client_message", "grpc_code",
    "is_expected", "new_request_id", "parse_priority", "parse_timeout_ms", "redact", "status_for",
]
