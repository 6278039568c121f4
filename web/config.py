"""Configuration read from the environment, with safe defaults for the embedded mode.

Every setting is `LINLI_<NAME>`; the embedded mode keeps its SQLite database and its generated
secret key under `instance/` (never committed).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def instance_path() -> Path:
    """The folder that holds the embedded database and the generated secret key."""
    path = Path(os.environ.get("LINLI_INSTANCE_PATH", PROJECT_ROOT / "instance"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    """The embedded SQLite database under instance/."""
    return f"sqlite:///{instance_path() / 'linli.db'}"


def database_url() -> str:
    """The database URL from LINLI_DATABASE_URL, or the embedded default."""
    return os.environ.get("LINLI_DATABASE_URL") or default_database_url()


def secret_key() -> str:
    """LINLI_SECRET_KEY, or a key generated once and kept in instance/secret_key."""
    key = os.environ.get("LINLI_SECRET_KEY")
    if key:
        return key
    path = instance_path() / "secret_key"
    try:  # created readable by the owner only, and by one process only
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass
class Settings:
    """The settings one app instance runs with."""

    database_url: str = field(default_factory=database_url)
    secret_key: str = field(default_factory=secret_key)
    token_ttl_hours: int = field(
        default_factory=lambda: int(os.environ.get("LINLI_TOKEN_TTL_HOURS", "720"))
    )
    secure_cookies: bool = field(
        default_factory=lambda: os.environ.get("LINLI_SECURE_COOKIES", "0") == "1"
    )
    # Database connections each process keeps (PostgreSQL); as many again may open under load.
    pool_size: int = field(
        default_factory=lambda: int(os.environ.get("LINLI_POOL_SIZE", "5"))
    )
    # Rate limits in the `limits` notation ("10/minute", "5 per 10 seconds"), or "off".
    rate_limit_login: str = field(
        default_factory=lambda: os.environ.get("LINLI_RATE_LIMIT_LOGIN", "10/minute")
    )
    rate_limit_points: str = field(
        default_factory=lambda: os.environ.get("LINLI_RATE_LIMIT_POINTS", "120/minute")
    )
    # Redis for the rate limits (shared by every worker and node); memory of each process without.
    redis_url: str | None = field(default_factory=lambda: os.environ.get("LINLI_REDIS_URL") or None)
    redis_prefix: str = field(
        default_factory=lambda: os.environ.get("LINLI_REDIS_PREFIX", "linli")
    )
    # How many proxies (nginx, a load balancer) stand in front and set X-Forwarded-For/-Proto/
    # -Host: only then is the client's address taken from those headers.
    proxies: int = field(default_factory=lambda: int(os.environ.get("LINLI_PROXIES", "0")))
    # Who may read /metrics: loopback, these networks (comma-separated CIDRs), or the bearer token.
    metrics_allow: str = field(default_factory=lambda: os.environ.get("LINLI_METRICS_ALLOW", ""))
    metrics_token: str | None = field(
        default_factory=lambda: os.environ.get("LINLI_METRICS_TOKEN") or None
    )
    testing: bool = False


def log_format() -> str:
    """LINLI_LOG_FORMAT: "json" (one object per line, `linli serve --prod`) or "text"."""
    return os.environ.get("LINLI_LOG_FORMAT", "text").lower()


def log_level() -> str:
    """LINLI_LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR."""
    return os.environ.get("LINLI_LOG_LEVEL", "INFO").upper()
