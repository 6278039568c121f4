"""Server-rendered pages (Jinja, progressive enhancement): the people's way into Linli.

Views are thin: they read a form, call one service function with the signed-in actor, and
render. A refused action (any LinliError) is shown as a readable message in the user's
language on the same page; nothing half-done is ever saved, because the service's transaction
rolled back.
"""

import web.pages.clerk  # noqa: F401  (the supermarket clerk's stock pages)
import web.pages.grid  # noqa: F401  (the grid worker's pages)
import web.pages.inbox  # noqa: F401  (the inbox and notification settings, every role)
import web.pages.interchange  # noqa: F401  (importing lists from XLSX and CSV)
import web.pages.resident  # noqa: F401  (the resident's pages)
import web.pages.subdistrict  # noqa: F401  (the subdistrict admin's dashboard)
import web.pages.unit  # noqa: F401  (the co-building unit admin's pages)
from web.pages import (  # noqa: F401  (their routes join the blueprint)
    books,
    demand_pages,
    secretary,
    secretary_lists,
)
from web.pages.views import bp

__all__ = ["bp"]
