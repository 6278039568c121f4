"""Importing demand and resource lists from an XLSX or CSV file, for integrators: a dry run
answers the preview (every row's problems by row, column and code); without it the file is
recorded whole or not at all."""

from __future__ import annotations

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields

from web.api.common import current_actor, db
from web.api.demands import DemandIn
from web.api.resources import ResourceIn
from web.services import interchange as service

PREFIX = "/import"
blp = Blueprint("import", __name__, description="Import demand and resource lists from XLSX or "
                "CSV (columns: docs/import.md)")


class FileIn(Schema):
    file = Upload(required=True, metadata={"description": ".xlsx, or .csv in UTF-8 or GBK"})


class ImportArgs(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={
        "description": "only check the file and answer the preview; nothing is recorded"})
    publish = fields.Boolean(load_default=False, metadata={
        "description": "publish every item at once instead of keeping drafts"})


class DemandImportArgs(ImportArgs):
    community_id = fields.Integer(required=True)


class ResourceImportArgs(ImportArgs):
    unit_id = fields.Integer(required=True)


class ProblemOut(Schema):
    row = fields.Integer(allow_none=True, metadata={"description": "the sheet's row number"})
    column = fields.String(allow_none=True, metadata={"description": "the header as written"})
    code = fields.String()
    params = fields.Dict()


class ImportOut(Schema):
    dry_run = fields.Boolean()
    ok = fields.Boolean()
    rows = fields.Integer()
    rows_with_errors = fields.Integer()
    problems = fields.List(fields.Nested(ProblemOut))
    notices = fields.List(fields.Nested(ProblemOut))
    created_ids = fields.List(fields.Integer())
    replayed = fields.Boolean()


SCHEMAS = {"demands": DemandIn, "resources": ResourceIn}


def _run(kind: str, scope_id: int, args: dict, files: dict) -> dict:
    upload = files["file"]
    data = upload.stream.read(service.MAX_BYTES + 1)
    actor, name = current_actor(), upload.filename or "upload"
    common = {"actor": actor, "kind": kind, "scope_id": scope_id, "filename": name,
              "data": data, "schema": SCHEMAS[kind], "publish": args["publish"]}
    if args["dry_run"]:
        preview = service.preview_import(db(), **common).as_dict()
        return {**preview, "dry_run": True, "created_ids": []}
    key = request.headers.get("Idempotency-Key")
    result = service.commit_import(db(), **common, token=key)
    return {"dry_run": False, "ok": True, "rows": len(result.ids), "rows_with_errors": 0,
            "problems": [], "notices": [], "created_ids": result.ids,
            "replayed": result.replayed}


@blp.route("/demands")
class DemandImport(MethodView):
    @blp.arguments(DemandImportArgs, location="query")
    @blp.arguments(FileIn, location="files")
    @blp.response(200, ImportOut)
    def post(self, args, files):
        """Import a community's demands (its secretary, or a grid worker in her grid); with
        dry_run=1 only the preview. A refused file is a 422 listing every problem; an
        Idempotency-Key header makes a retry harmless."""
        return _run("demands", args["community_id"], args, files)


@blp.route("/resources")
class ResourceImport(MethodView):
    @blp.arguments(ResourceImportArgs, location="query")
    @blp.arguments(FileIn, location="files")
    @blp.response(200, ImportOut)
    def post(self, args, files):
        """Import a unit's resource items (the unit's admin); with dry_run=1 only the preview."""
        return _run("resources", args["unit_id"], args, files)
