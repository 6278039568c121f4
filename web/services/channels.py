"""Outgoing channels behind one interface: e-mail over SMTP and a signed JSON webhook.

A channel is configured by the deployment (environment variables), never by a user: users only
give their address and opt in. `channels_from_env()` returns the channels whose settings are
present; a channel without settings is absent, and its deliveries wait (see
`notifications.send_due_deliveries`). Every failure is raised as `ChannelError`, so the sender
records it and retries later.

E-mail: LINLI_SMTP_HOST (required), LINLI_SMTP_PORT (25, or 587 with STARTTLS),
LINLI_SMTP_USER and LINLI_SMTP_PASSWORD (optional login), LINLI_SMTP_FROM
(default linli@<host>), LINLI_SMTP_STARTTLS (1/0, default 0), LINLI_SMTP_TIMEOUT (seconds, 10).

Webhook (for an SMS or WeChat gateway): LINLI_WEBHOOK_URL and LINLI_WEBHOOK_SECRET (both
required), LINLI_WEBHOOK_TIMEOUT (seconds, 10). The body is JSON
`{"to", "subject", "body", "kind", "id"}`; the header `X-Linli-Signature: sha256=<hex>` is the
HMAC-SHA256 of the exact body bytes with the secret. Anything but a 2xx answer (redirects
included) is a failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Linli-Signature"
DEFAULT_TIMEOUT = 10.0


class ChannelError(Exception):
    """A message could not be handed to the channel (it will be retried)."""


class Channel(Protocol):
    """What every channel offers: a name and one way to send a message to one address."""

    name: str

    def send(self, address: str, subject: str, body: str, *, kind: str = "",
             ref: str = "") -> None:
        """Hand one message to the channel; raise ChannelError (or any error) on failure.
        `kind` and `ref` (the delivery's id) let a gateway route and deduplicate."""


def sign(secret: str, payload: bytes) -> str:
    """The signature header's value for `payload`: sha256=<hex HMAC-SHA256>."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


class EmailChannel:
    """E-mail through an SMTP server (plain, or upgraded with STARTTLS), with a timeout."""

    name = "email"

    def __init__(self, host: str, port: int = 25, *, sender: str, user: str | None = None,
                 password: str | None = None, starttls: bool = False,
                 timeout: float = DEFAULT_TIMEOUT):
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password = user, password
        self.starttls, self.timeout = starttls, timeout

    def send(self, address: str, subject: str, body: str, *, kind: str = "",
             ref: str = "") -> None:
        """Send one plain-text UTF-8 e-mail to `address`."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, address, subject
        if ref:
            message["X-Linli-Delivery"] = ref
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"smtp {self.host}:{self.port}: {exc}") from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect answered to a POST is a failure, not a GET somewhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookChannel:
    """A JSON POST to the deployment's gateway, signed with HMAC-SHA256."""

    name = "webhook"

    def __init__(self, url: str, secret: str, *, timeout: float = DEFAULT_TIMEOUT):
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("the webhook URL must be http(s)")
        self.url, self.secret, self.timeout = url, secret, timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, address: str, subject: str, body: str, *, kind: str = "",
             ref: str = "") -> None:
        """POST {to, subject, body, kind, id}; anything but 2xx raises ChannelError."""
        payload = json.dumps({"to": address, "subject": subject, "body": body, "kind": kind,
                              "id": ref}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=payload, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(self.secret, payload)})
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ChannelError(f"webhook answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise ChannelError(f"webhook: {exc}") from exc
        if not 200 <= status < 300:
            raise ChannelError(f"webhook answered {status}")


def _seconds(env: Mapping[str, str], name: str) -> float:
    try:
        return max(1.0, float(env.get(name) or DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def email_from_env(env: Mapping[str, str]) -> EmailChannel | None:
    """The e-mail channel from LINLI_SMTP_*, or None without LINLI_SMTP_HOST."""
    host = env.get("LINLI_SMTP_HOST")
    if not host:
        return None
    starttls = env.get("LINLI_SMTP_STARTTLS", "0").lower() in ("1", "true", "yes")
    try:
        port = int(env.get("LINLI_SMTP_PORT") or (587 if starttls else 25))
    except ValueError:
        log.warning("LINLI_SMTP_PORT is not a number: e-mail off")
        return None
    return EmailChannel(host, port, sender=env.get("LINLI_SMTP_FROM") or f"linli@{host}",
                        user=env.get("LINLI_SMTP_USER") or None,
                        password=env.get("LINLI_SMTP_PASSWORD") or None, starttls=starttls,
                        timeout=_seconds(env, "LINLI_SMTP_TIMEOUT"))


def webhook_from_env(env: Mapping[str, str]) -> WebhookChannel | None:
    """The webhook channel from LINLI_WEBHOOK_*, or None unless both URL and secret are set."""
    url, secret = env.get("LINLI_WEBHOOK_URL"), env.get("LINLI_WEBHOOK_SECRET")
    if not url:
        return None
    if not secret:
        log.warning("LINLI_WEBHOOK_URL is set without LINLI_WEBHOOK_SECRET: webhook off")
        return None
    return WebhookChannel(url, secret, timeout=_seconds(env, "LINLI_WEBHOOK_TIMEOUT"))


def channels_from_env(env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """The configured channels by name (a channel without settings is left out)."""
    env = os.environ if env is None else env
    found = [email_from_env(env), webhook_from_env(env)]
    return {channel.name: channel for channel in found if channel is not None}


def public_link(link: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """A page's path as a full address for outgoing messages (LINLI_BASE_URL + path), or
    None when no base address is configured."""
    env = os.environ if env is None else env
    base = (env.get("LINLI_BASE_URL") or "").rstrip("/")
    return f"{base}{link}" if base and link else None
