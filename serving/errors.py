"""The requests the service refuses, each with its HTTP status (the app turns them into answers)."""

from __future__ import annotations

import math


class ServiceError(Exception):
    """A request the service refuses; ``status`` is the HTTP code, ``field`` the offending field,
    ``retry_after`` the seconds after which trying again may succeed (429 and 503)."""

    status = 400

    def __init__(
        self, message: str, field: list[str | int] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.field = message, field
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))


class NotFoundError(ServiceError):
    status = 404


class ConflictError(ServiceError):
    status = 409


class InvalidError(ServiceError):
    status = 422


class RateLimitedError(ServiceError):
    """A rate limit or quota is reached (429 with ``Retry-After``)."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)


class BusyError(ServiceError):
    """Expensive work is at its bound on this server (503 with ``Retry-After``)."""

    status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
