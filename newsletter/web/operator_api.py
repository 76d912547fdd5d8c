"""Operator routes of the JSON API under /api/v1, behind a bearer token (web.auth)."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from newsletter import db, suppression
from newsletter.web.auth import operator_required

bp = Blueprint("operator_api", __name__, url_prefix="/api/v1")

# One request holds at most this many reports (a few seconds of work); send more in
# several requests, or a file to `newsletter subscribers reports`.
MAX_REPORTS = 1_000


@bp.post("/suppressions/reports")
@operator_required
def suppression_reports():
    items = _report_list(request.get_json(silent=True))
    session = db.session()
    summary = suppression.apply_reports(session, suppression.parse_report_list(items))
    session.commit()
    return jsonify({
        "processed": summary.processed,
        "duplicates": summary.duplicates,
        "suppressed": summary.suppressed,
        "unsubscribed": summary.unsubscribed,
        "invalid": [{"index": e.where, "message": e.message} for e in summary.invalid],
    })


@bp.get("/subscribers/counts")
@operator_required
def subscriber_counts():
    return jsonify(suppression.counts(db.session()))


def _report_list(body) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("reports"), list):
        abort(400, description='Send a JSON object: {"reports": [{"email", "type", "at", "detail"}]}.')
    if len(body["reports"]) > MAX_REPORTS:
        abort(413, description=f"At most {MAX_REPORTS} reports per request.")
    return body["reports"]
