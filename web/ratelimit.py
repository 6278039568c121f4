"""Rate limits on signing in and on moving points, applied by one hook from one table.

Signing in (the API's token and session endpoints, the sign-in page) is limited per client
address and per username tried (LINLI_RATE_LIMIT_LOGIN, default 10/minute); the endpoints that
move points or fund money are limited per signed-in user (LINLI_RATE_LIMIT_POINTS, default
120/minute). "off" turns a limit off. Windows are moving windows (the `limits` package), kept in
Redis when LINLI_REDIS_URL is set (shared by every worker and node), else in each process's
memory. A refused request is answered 429 with Retry-After before its view runs, so nothing
changes. When Redis does not answer, requests are let through (fail open) with a warning: a
broken limiter must not take the service down.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app, flash, render_template, request, session
from flask_babel import gettext as _
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from web.errors import LinliError, RateLimitedError

log = logging.getLogger(__name__)

# Endpoint → what is limited. Only POSTs count: reading a page or a list is never limited.
LOGIN_ENDPOINTS = frozenset({"auth.Token", "auth.BrowserSession", "pages.login"})
POINTS_ENDPOINTS = frozenset({
    "lovebank.Awards", "lovebank.Gifts", "lovebank.Adjustments", "lovebank.Reverse",
    "market.Orders", "market.OrderCancel", "market.HandOver", "market.FundDonations",
    "market.ItemPurchases",
    "pages.market_order", "pages.counter", "pages.counter_redeem", "pages.counter_purchase",
})
REDIS_RETRY_SECONDS = 10  # after Redis failed, let requests through this long before trying again


def parse_limit(text: str) -> RateLimitItem | None:
    """'10/minute' → the limit; 'off' (or empty) → None; anything else stops the app at start."""
    text = (text or "").strip()
    return None if text.lower() in ("", "off", "0", "none") else parse(text)


@dataclass
class RateLimiter:
    """The two limits and where their windows are kept."""

    login: RateLimitItem | None
    points: RateLimitItem | None
    storage: Storage | None
    redis_down_until: float = 0.0

    def __post_init__(self):
        self.strategy = MovingWindowRateLimiter(self.storage) if self.storage else None

    @classmethod
    def from_settings(cls, settings) -> RateLimiter:
        """Limits from LINLI_RATE_LIMIT_*; Redis storage when LINLI_REDIS_URL is set."""
        login, points = parse_limit(settings.rate_limit_login), parse_limit(settings.rate_limit_points)
        storage = None
        if login or points:
            storage = (RedisStorage(settings.redis_url, key_prefix=settings.redis_prefix,
                                    socket_connect_timeout=0.5, socket_timeout=0.5)
                       if settings.redis_url else MemoryStorage())
        return cls(login, points, storage)

    def wait_for(self, item: RateLimitItem, keys: list[tuple[str, ...]]) -> int:
        """Count one attempt against every key; 0 if allowed, else seconds until it would be.
        An attempt refused by one key is counted against none."""
        strategy = self.strategy
        if time.monotonic() < self.redis_down_until:
            return 0
        try:
            full = [key for key in keys if not strategy.test(item, *key)]
            if not full and all(strategy.hit(item, *key) for key in keys):
                return 0
            return max(self._seconds_left(strategy, item, key) for key in full or keys)
        except Exception as exc:  # the storage failed: let the request through
            self.redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
            log.warning("rate limits not applied for %ss: their storage failed (%s: %s)",
                        REDIS_RETRY_SECONDS, type(exc).__name__, exc)
            return 0

    @staticmethod
    def _seconds_left(strategy, item, key) -> int:
        reset = strategy.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset - time.time()))


def _login_keys() -> list[tuple[str, ...]]:
    if request.blueprint == "pages":
        username = request.form.get("username", "")
    else:
        body = request.get_json(silent=True)
        username = body.get("username", "") if isinstance(body, dict) else ""
    username = str(username).strip().lower()[:150]
    keys = [("login-ip", request.remote_addr or "-")]
    return keys + [("login-user", username)] if username else keys


def _points_keys() -> list[tuple[str, ...]]:
    """The signed-in user's key; none when nobody is signed in (the view answers 401)."""
    if request.blueprint == "pages":
        user_id = session.get("user_id")
    else:
        from web.api.common import current_actor

        try:
            user_id = current_actor().user_id
        except LinliError:
            return []
    return [("points-user", str(user_id))] if user_id is not None else []


def check_rate_limits():
    """The before_request hook: look the endpoint up in the table, count, refuse with 429."""
    limiter: RateLimiter = current_app.extensions["linli_rate_limiter"]
    if request.method != "POST" or limiter.storage is None:
        return None
    if request.endpoint in LOGIN_ENDPOINTS and limiter.login:
        item, keys = limiter.login, _login_keys()
    elif request.endpoint in POINTS_ENDPOINTS and limiter.points:
        item, keys = limiter.points, _points_keys()
    else:
        return None
    wait = limiter.wait_for(item, keys) if keys else 0
    if not wait:
        return None
    if request.blueprint != "pages":
        raise RateLimitedError(wait)
    return _refused_page(wait)


def _refused_page(wait: int):
    """The page's answer: the sign-in form again, or the error page, with a readable message."""
    message = _("Too many attempts in a short time. Please wait %(seconds)s seconds and try "
                "again.", seconds=wait)
    headers = {"Retry-After": str(wait)}
    if request.endpoint == "pages.login":
        flash(message, "danger")
        return render_template("pages/login.html"), 429, headers
    return render_template("pages/error.html", message=message), 429, headers


def init_rate_limits(app: Flask) -> None:
    """Build the limiter from the app's settings and add the hook."""
    app.extensions["linli_rate_limiter"] = RateLimiter.from_settings(app.extensions["linli"].settings)
    app.before_request(check_rate_limits)
