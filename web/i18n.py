"""Languages and time zones for pages: zh-CN by default, English on request, remembered.

Message ids are English in the code and templates; `web/translations/zh_CN` holds the Chinese.
The choice lives in the session (and in the user's `locale` once signed in); times are stored
in UTC and shown in Asia/Shanghai.
"""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel

LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT_LOCALE = "zh_CN"
TIMEZONE = "Asia/Shanghai"


def select_locale() -> str:
    """The session's language, then the signed-in user's, then zh-CN (never the browser's
    guess: the communities' default is Chinese whatever the phone says)."""
    chosen = request.args.get("lang") or session.get("lang") or getattr(g, "user_locale", None)
    return chosen if chosen in LANGUAGES else DEFAULT_LOCALE


def init_i18n(app: Flask) -> Babel:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    return Babel(app, locale_selector=select_locale, timezone_selector=lambda: TIMEZONE)
