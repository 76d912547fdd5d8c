"""The console's editor of the prompt rules: /operator/prompts/rules.

Shims over newsletter.prompt_rules_edit: the page shows the rules in force as JSON, the
kill switch and the kept versions; a save, a switch or a restore is one domain call. A
refused save (bad rules, a save in between, an expired form, a file that cannot be
written) shows the page again with the reason and the operator's text as sent.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from newsletter import prompt_rules_edit as edit
from newsletter.models import utcnow
from newsletter.prompt_rules import InvalidRules
from newsletter.web.console import console_required, on_this_site, sign_in_first, signed_in_operator

bp = Blueprint("console_prompt_rules", __name__, url_prefix="/operator/prompts/rules")


@bp.get("")
@console_required
def index():
    return editor()


@bp.post("")
@console_required
def save():
    text = request.form.get("rules", "")
    return _saved(lambda: edit.save(current_app.config, text, _based_on(), g.operator.email, utcnow()), text)


@bp.post("/switch")
@console_required
def switch():
    enabled = request.form.get("enabled") == "on"
    return _saved(lambda: edit.switch(current_app.config, enabled, _based_on(), g.operator.email, utcnow()))


@bp.post("/restore")
@console_required
def restore():
    version = request.form.get("version", "")
    return _saved(lambda: edit.restore(current_app.config, version, _based_on(), g.operator.email, utcnow()))


@bp.get("/version")
@console_required
def version():
    try:
        entry, latest = edit.kept(current_app.config, request.args.get("v", "")), edit.current(current_app.config)
    except edit.UnknownVersion as error:
        return editor(error=f"{error}: it may be older than the {edit.HISTORY_KEPT} kept.", status=404)
    except OSError as error:
        return editor(error=f"The rules cannot be read: {error}", status=500)
    return render_template("operator/prompt_rules_version.html", entry=entry, latest=latest,
                           changes=edit.changes(entry, latest))


@bp.errorhandler(CSRFError)
def expired(error: CSRFError):
    g.operator = signed_in_operator()
    if g.operator is None:  # no session at all: the rules are for operators only
        return sign_in_first()
    if not on_this_site(request.headers.get("Origin") or request.referrer):  # not the operator's text to save
        return editor(status=400, error="A form from another site was refused; nothing was saved.")
    return editor(text=request.form.get("rules"), status=400,
                  error="The form had expired, so nothing was saved; the text below is yours: save it again.")


def _saved(action, text: str | None = None):
    """`action()`, then back to the editor; a refusal: the editor with why and the text kept."""
    try:
        rules = action()
    except InvalidRules as error:
        return editor(text=text, error=f"Not saved: the rules are not valid: {error}.", status=422)
    except edit.UnknownVersion as error:
        return editor(error=f"Not restored: {error}.", status=404)
    except edit.StaleRules as error:
        return editor(text=text, error=f"Not saved: {error}. The rules in force are in the list of versions below; "
                      "the text here is yours. Saving it again replaces them.", status=409)
    except OSError as error:
        current_app.logger.error("prompt rules not saved: %s", error)
        return editor(text=text, error=f"Not saved: the rules file cannot be written ({error}).", status=500)
    current_app.logger.info("prompt rules version %s saved by %s", rules.version, g.operator.email)
    flash(f"Saved as version {rules.version}: readers get it within a second. "
          + ("Prompts are on." if rules.enabled else "Every prompt is switched off."))
    # `saved` after a save of the editor's text: the page's script drops the text it kept.
    return redirect(url_for(".index", saved=rules.version) if text is not None else url_for(".index"), 303)


def editor(text: str | None = None, error: str | None = None, status: int = 200):
    """The editor page; `text` in the editor instead of the rules in force (a refused save)."""
    try:
        latest, versions = edit.current(current_app.config), edit.history(current_app.config)
    except OSError as read_error:
        return render_template("operator/prompt_rules.html", latest=None, text=text or "", versions=[],
                               error=f"The rules file cannot be read: {read_error}"), 500
    return render_template("operator/prompt_rules.html", latest=latest, text=latest.text if text is None else text,
                           versions=versions, error=error,
                           writable_to=edit.editable_path(current_app.config)), status


def _based_on() -> str:
    """The fingerprint of the rules the form was made from (prompt_rules_edit.Current)."""
    return request.form.get("based_on", "")
