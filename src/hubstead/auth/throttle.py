"""Failure budgets against brute force: sign-in per account and per address, invalid tokens per address.

Past a budget the caller gets a 429 with ``Retry-After`` until the oldest failure leaves the window; a
successful sign-in clears its account's count. The state is in this process's memory, which is right for
one ``hubstead serve`` process; issue 22 moves shared state into the database, and these counts with it
(several processes would each allow the budget today).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

from hubstead.config import Settings
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


class Throttle:
    """The budgets one server keeps (``app.state.throttle``)."""

    def __init__(
        self,
        *,
        signin_per_account: int = DEFAULT_SIGNIN_PER_ACCOUNT,
        signin_per_address: int = DEFAULT_SIGNIN_PER_ADDRESS,
        token_failures_per_address: int = DEFAULT_TOKEN_FAILURES_PER_ADDRESS,
    ) -> None:
        self.signin_account = FailureBudget(signin_per_account, SIGNIN_WINDOW_SECONDS)
        self.signin_address = FailureBudget(signin_per_address, SIGNIN_WINDOW_SECONDS)
        self.token_address = FailureBudget(token_failures_per_address, TOKEN_WINDOW_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttle:
        return cls(
            signin_per_account=settings.signin_failures_per_account,
            signin_per_address=settings.signin_failures_per_address,
            token_failures_per_address=settings.token_failures_per_address,
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
