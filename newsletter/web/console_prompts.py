"""The console's page of the membership prompt's report: GET /operator/prompts.

The figures are newsletter.prompt_report's, the same as `newsletter prompts report` and
GET /api/v1/prompts/report give, from the rules and the Redis the reader pages use
(web.prompt_reader). The counters live in Redis and the conversions in the database: when
Redis cannot be asked, the page says the counts are unavailable and still lists the
conversions outside the rules' prompts.
"""
from __future__ import annotations

import redis
from flask import Blueprint, current_app, render_template
from sqlalchemy.orm import Session

from newsletter import db, prompt_report
from newsletter.prompt_report import VariantRow
from newsletter.prompt_rules import InvalidRules, Prompt, Rules, load_rules, rules_path
from newsletter.web import prompt_reader
from newsletter.web.console import console_required

bp = Blueprint("console_prompts", __name__, url_prefix="/operator/prompts")
NO_REDIS = "Counts unavailable: no Redis is configured (NEWSLETTER_REDIS_URL), so nothing is counted."
REDIS_FAILED = "Counts unavailable: Redis did not answer. Conversions outside the prompts are below."


@bp.get("")
@console_required
def index():
    try:  # the file itself, not the reader pages' last good rules: the page says what is wrong
        rules = load_rules(rules_path(current_app.config))
    except (OSError, InvalidRules) as error:
        return render_template("operator/prompts.html", rules=None,
                               error=f"The prompt rules cannot be read: {error}")
    session = db.session()
    rows, unavailable = _rows(session, rules)
    return render_template("operator/prompts.html", rules=rules, unavailable=unavailable,
                           prompts=by_prompt(rules, rows), counted=any(map(_counted, rows)),
                           other=prompt_report.other_conversions(session, rules))


def _rows(session: Session, rules: Rules) -> tuple[list[VariantRow], str | None]:
    """The report's rows, or none and why the counts cannot be had."""
    store = prompt_reader.redis_client(current_app)
    if store is None:
        return [], NO_REDIS
    try:
        return prompt_report.report(session, store, rules), None
    except redis.RedisError as error:
        # An operator page, not the reader's: say so on the page, and keep the cause in the log.
        current_app.logger.warning("prompt report: Redis did not answer (%s)", error)
        return [], REDIS_FAILED


def by_prompt(rules: Rules, rows: list[VariantRow]) -> list[tuple[Prompt, list[VariantRow]]]:
    """Each prompt of the rules, in their order, with its rows (control first)."""
    return [(prompt, [row for row in rows if row.prompt == prompt.id]) for prompt in rules.prompts]


def _counted(row: VariantRow) -> bool:
    return bool(row.readers or row.impressions or row.seen or row.clicks or row.dismissals or row.conversions)
