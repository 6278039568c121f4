"""The REST API under /api/v1 (flask-smorest): one blueprint per area, thin views."""

from __future__ import annotations

from flask import Flask

from web.api import (
    activities,
    assignments,
    auth,
    demands,
    figures,
    interchange,
    lovebank,
    market,
    matching,
    notifications,
    places,
    reports,
    resources,
    units,
    users,
    volunteers,
    wishes,
)
from web.api.common import LinliApi

BLUEPRINTS = (auth, places, units, users, resources, demands, assignments, reports, wishes,
              matching, lovebank, market, volunteers, activities, interchange, figures,
              notifications)


def init_api(app: Flask) -> LinliApi:
    """Create the Api on `app` and register every blueprint."""
    api = LinliApi(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "POST /api/v1/auth/token"})
    for module in BLUEPRINTS:
        api.register_blueprint(module.blp, url_prefix=f"/api/v1{module.PREFIX}")
    return api
