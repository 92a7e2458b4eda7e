"""RFC 9457 problem details (application/problem+json) for every error response."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap

from backend.breaker import CircuitOpenError
from backend.db import DatabaseUnavailableError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("backend.errors")


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem details body (documents the error responses in OpenAPI)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the given error statuses, as application/problem+json bodies."""
    return {
        status: ResponseSpec(
            Problem,
            description=HTTPStatus(status).phrase,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A problem-details response; `extra` members are added to the body."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra or {})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    extra = {"errors": exc.extra} if exc.extra else None
    return problem(request, exc.status_code, exc.detail, extra, exc.headers)


def _unavailable(
    request: Request[Any, Any, Any], exc: DatabaseUnavailableError | CircuitOpenError
) -> Response[dict[str, Any]]:
    log.warning("database unavailable: %s", exc)  # backend.db logs where and why
    retry_after = exc.retry_after_s if isinstance(exc, CircuitOpenError) else 1.0
    return problem(
        request,
        503,
        f"The database is unavailable, try again later ({exc}).",
        headers={"Retry-After": str(max(1, round(retry_after)))},
    )


def _not_utf8(
    request: Request[Any, Any, Any], _exc: UnicodeDecodeError
) -> Response[dict[str, Any]]:
    return problem(request, 400, "The request is not valid UTF-8.")


def _too_deep(request: Request[Any, Any, Any], _exc: RecursionError) -> Response[dict[str, Any]]:
    return problem(request, 400, "The request body is nested too deeply.")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "Unexpected server error; the request id is in the logs.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_error,
    DatabaseUnavailableError: _unavailable,
    CircuitOpenError: _unavailable,
    # msgspec raises these two while decoding hostile JSON bodies (the app has no recursion).
    UnicodeDecodeError: _not_utf8,
    RecursionError: _too_deep,
    Exception: _unexpected,
}
