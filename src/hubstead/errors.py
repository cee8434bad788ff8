"""One hierarchy of domain errors, each carrying the HTTP status and the Hub error code it maps to.

Services raise these; ``app.py`` turns them into responses once, with the ``X-Error-Code`` and
``X-Error-Message`` headers and the ``{"error": ...}`` body that ``huggingface_hub`` reads to pick
its own exception class.
"""

from __future__ import annotations

import re

_NOT_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
MAX_ERROR_HEADER_CHARS = 1000


def error_header_value(message: str) -> str:
    """``message`` as a valid ``X-Error-Message`` value, the one way every answer writes that header: error
    messages can quote user input or a model's multi-line load error, and a newline or control character in
    a header makes the server drop the connection without an answer. Runs of control characters become one
    space, characters outside latin-1 are escaped (``\\u2603``), and the value is bounded."""
    text = _NOT_IN_HEADER.sub(" ", message[: MAX_ERROR_HEADER_CHARS * 2]).strip()
    text = text.encode("latin-1", "backslashreplace").decode("latin-1")
    return text[:MAX_ERROR_HEADER_CHARS]


class HubError(Exception):
    """Base of every error Hubstead answers on purpose."""

    status_code: int = 400
    error_code: str | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}
        if status_code is not None:
            self.status_code = status_code


class BadRequestError(HubError):
    """The request is malformed: a bad field, a bad path, a body that does not parse."""

    status_code = 400


class InvalidPathError(BadRequestError):
    """A path in a repo is absolute, climbs out (``..``), names ``.git``, holds NUL or is too long: a 422, as the
    Hub answers a commit or an upload with such a path."""

    status_code = 422


class InvalidRefNameError(BadRequestError):
    """A new branch or tag name that git or the Hub refuses (``refs/pr/5``, ``a..b``, a commit id): a 400."""


class InvalidRepoIdError(BadRequestError):
    """A repo id or namespace that the Hub's naming rules refuse."""


class UnauthorizedError(HubError):
    """No valid credentials where they are required."""

    status_code = 401


class InvalidCredentialsError(UnauthorizedError):
    """A token was sent but is unknown or revoked."""

    def __init__(self, message: str = "Invalid credentials in Authorization header") -> None:
        super().__init__(message)


class ForbiddenError(HubError):
    """Authenticated, but not allowed to do this (a read token writing, a stranger's namespace)."""

    status_code = 403


class RepoNotFoundError(HubError):
    """The repo does not exist, or the caller may not know that it does."""

    status_code = 404
    error_code = "RepoNotFound"


class RevisionNotFoundError(HubError):
    """A branch, tag or commit that the repo does not have."""

    status_code = 404
    error_code = "RevisionNotFound"


class EntryNotFoundError(HubError):
    """A file or folder that the revision does not hold."""

    status_code = 404
    error_code = "EntryNotFound"


class GatedRepoError(HubError):
    """The repo is gated and the caller has not been granted access."""

    status_code = 403
    error_code = "GatedRepo"


class NotFoundError(HubError):
    """Anything else that is missing (a user, an org, an upload)."""

    status_code = 404


class ConflictError(HubError):
    """The thing already exists (a repo, a branch, a tag, a user)."""

    status_code = 409


class StaleParentCommitError(HubError):
    """The commit names a parent that is no longer the branch head."""

    status_code = 412


class PayloadTooLargeError(HubError):
    """A body over the limit the server accepts."""

    status_code = 413


class TooManyRequestsError(HubError):
    """Too many failures (sign-in, tokens) from one account or address: wait ``retry_after`` seconds."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.headers["Retry-After"] = str(self.retry_after)


class LfsObjectMissingError(BadRequestError):
    """A commit names an LFS object that was never uploaded, or with another size."""

    status_code = 422


class LfsVerificationError(BadRequestError):
    """Uploaded bytes do not match the announced sha256 or size."""

    status_code = 400


class NotImplementedYetError(HubError):
    """A Hub feature Hubstead does not serve yet."""

    status_code = 501
    error_code = "NotImplemented"


class ServiceUnavailableError(HubError):
    """A part the hub depends on is down for now (the database restarting, locked past its timeout): a 503 with
    ``Retry-After``, which huggingface_hub's ``http_backoff`` (uploads, preupload, downloads) waits out and
    retries."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.headers["Retry-After"] = str(self.retry_after)


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database is unreachable, restarting or locked: nothing was changed, retry shortly."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the database is unavailable; retry shortly", retry_after=retry_after)


class StorageUnavailableError(ServiceUnavailableError):
    """The blob store (S3) cannot be reached: nothing was stored or recorded; retry after ``retry_after`` s."""

    error_code = "StorageUnavailable"

    def __init__(self, message: str, *, retry_after: int = 10) -> None:
        super().__init__(message, retry_after=retry_after)
