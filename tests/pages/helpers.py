"""What page tests share: read the CSRF token, sign in through the form, read the alerts."""

from __future__ import annotations

import re


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, name: str, password: str = "password123"):
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": csrf(page.text)}, follow_redirects=True)


def alerts(html: str) -> list[str]:
    return re.findall(r'class="alert alert-\w+" role="alert">([^<]+)<', html)


def field_error(html: str, name: str) -> str | None:
    """The error shown under the field `name`, if any."""
    found = re.search(rf'id="{re.escape(name)}-error">([^<]+)<', html)
    return found.group(1) if found else None
