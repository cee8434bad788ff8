"""Failure budgets against brute force: sign-in per account and per address, invalid tokens per address.

Past a budget the caller gets a 429 with ``Retry-After`` until the oldest failure leaves the window; a
successful sign-in clears its account's count. A server keeps the counts in the database
(``coordination.failures``), so its API processes share one budget rather than each allowing it; without a
database (``Throttle()``) they are in this process's memory. The invalid-token budget, checked on every request
with a token, reads the database at most once a second per address and process (a failure recorded here is
seen at once): past the budget, other processes notice within that second.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from hubstead.config import Settings
from hubstead.coordination import failures
from hubstead.db import Database, utcnow
from hubstead.errors import TooManyRequestsError

DEFAULT_SIGNIN_PER_ACCOUNT: int = Settings.signin_failures_per_account
DEFAULT_SIGNIN_PER_ADDRESS: int = Settings.signin_failures_per_address
DEFAULT_TOKEN_FAILURES_PER_ADDRESS: int = Settings.token_failures_per_address
SIGNIN_WINDOW_SECONDS = 15 * 60
TOKEN_WINDOW_SECONDS = 5 * 60
_MAX_KEYS = 100_000  # the most accounts or addresses remembered per budget (the oldest are forgotten first)


class FailureBudget:
    """At most ``limit`` failures per key within ``window`` seconds (``limit`` 0: no budget)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it is within its budget."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                return None
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return None
            return int(failures[0] + self.window - now) + 1

    def fail(self, key: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            failures = self._failures.pop(key, None) or deque(maxlen=self.limit)
            failures.append(time.monotonic())
            self._failures[key] = failures  # most recent last
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class SharedFailureBudget:
    """``FailureBudget`` kept in the database, one budget for every process (``name`` tells budgets apart);
    ``cache_seconds`` > 0 remembers a key's "within budget" answer that long in this process."""

    def __init__(self, db: Database, name: str, limit: int, window: float, cache_seconds: float = 0.0) -> None:
        self.db, self.name, self.limit, self.window, self.cache_seconds = db, name, limit, window, cache_seconds
        self._within: OrderedDict[str, float] = OrderedDict()  # key -> until when it is known within budget
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        if self.limit <= 0:
            return None
        if self.cache_seconds > 0:
            with self._lock:
                until = self._within.get(key)
            if until is not None and until > time.monotonic():
                return None
        newest = failures.newest(self.db, self.name, key, self.window, self.limit)
        if len(newest) < self.limit:
            if self.cache_seconds > 0:
                with self._lock:
                    self._within[key] = time.monotonic() + self.cache_seconds
                    self._within.move_to_end(key)
                    while len(self._within) > _MAX_KEYS:
                        self._within.popitem(last=False)
            return None
        oldest = newest[-1]  # the oldest of the last ``limit`` failures: when it leaves the window, a try is free
        return max(0, int((oldest - utcnow()).total_seconds() + self.window)) + 1

    def fail(self, key: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self._within.pop(key, None)
        failures.record(self.db, self.name, key)

    def clear(self, key: str) -> None:
        with self._lock:
            self._within.pop(key, None)
        failures.clear(self.db, self.name, key)


class Throttle:
    """The budgets one server keeps (``app.state.throttle``)."""

    def __init__(
        self,
        *,
        signin_per_account: int = DEFAULT_SIGNIN_PER_ACCOUNT,
        signin_per_address: int = DEFAULT_SIGNIN_PER_ADDRESS,
        token_failures_per_address: int = DEFAULT_TOKEN_FAILURES_PER_ADDRESS,
        db: Database | None = None,
    ) -> None:
        self.signin_account: FailureBudget | SharedFailureBudget
        self.signin_address: FailureBudget | SharedFailureBudget
        self.token_address: FailureBudget | SharedFailureBudget
        if db is None:
            self.signin_account = FailureBudget(signin_per_account, SIGNIN_WINDOW_SECONDS)
            self.signin_address = FailureBudget(signin_per_address, SIGNIN_WINDOW_SECONDS)
            self.token_address = FailureBudget(token_failures_per_address, TOKEN_WINDOW_SECONDS)
        else:
            self.signin_account = SharedFailureBudget(db, "signin-account", signin_per_account, SIGNIN_WINDOW_SECONDS)
            self.signin_address = SharedFailureBudget(db, "signin-address", signin_per_address, SIGNIN_WINDOW_SECONDS)
            self.token_address = SharedFailureBudget(
                db, "token-address", token_failures_per_address, TOKEN_WINDOW_SECONDS, cache_seconds=1.0
            )

    @classmethod
    def from_settings(cls, settings: Settings, db: Database | None = None) -> Throttle:
        """The budgets ``settings`` give, shared through ``db`` (every process of the server) when given."""
        return cls(
            signin_per_account=settings.signin_failures_per_account,
            signin_per_address=settings.signin_failures_per_address,
            token_failures_per_address=settings.token_failures_per_address,
            db=db,
        )

    def check_sign_in(self, name: str, address: str) -> None:
        """Raise TooManyRequestsError while the account or the address is over its sign-in budget."""
        wait = self.signin_account.retry_after(name.strip().lower())
        if wait is not None:
            raise TooManyRequestsError(
                f"Too many failed sign-in attempts for this account; it is locked for {_minutes(wait)}. "
                "Try again later.",
                retry_after=wait,
            )
        wait = self.signin_address.retry_after(address)
        if wait is not None:
            raise TooManyRequestsError(
                f"Too many failed sign-in attempts from your address; try again in {_minutes(wait)}.",
                retry_after=wait,
            )

    def sign_in_failed(self, name: str, address: str) -> None:
        self.signin_account.fail(name.strip().lower())
        self.signin_address.fail(address)

    def signed_in(self, name: str) -> None:
        self.signin_account.clear(name.strip().lower())

    def check_token(self, address: str) -> None:
        """Raise TooManyRequestsError while the address is over its invalid-token budget."""
        wait = self.token_address.retry_after(address)
        if wait is not None:
            raise TooManyRequestsError(
                f"Too many requests with invalid tokens from your address; try again in {_minutes(wait)}.",
                retry_after=wait,
            )

    def token_failed(self, address: str) -> None:
        self.token_address.fail(address)


def _minutes(seconds: int) -> str:
    minutes = (seconds + 59) // 60
    return "1 minute" if minutes <= 1 else f"{minutes} minutes"
