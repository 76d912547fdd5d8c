"""The console's editor of the prompt rules: /operator/prompts/rules.

Shims over newsletter.prompt_rules_edit: the page shows the rules in force as JSON, the
kill switch and the kept versions; a save, a switch or a restore is one domain call. Each
prompt also has a form (/operator/prompts/rules/prompts/<id>, newsletter.prompt_rules_form)
for the values the desk changes. A refused save (bad rules, a save in between, an expired
form, a file that cannot be written) shows the page again with the reason and the
operator's text or values as sent.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from newsletter import prompt_rules_edit as edit
from newsletter import prompt_rules_form as fields
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
    return _saved(lambda: edit.save(current_app.config, text, _based_on(), g.operator.email, utcnow()),
                  refused=lambda error, status: editor(text=text, error=error, status=status,
                                                       based_on=_kept_based_on(status)),
                  stale_hint="The rules in force are in the list of versions below; the text here is yours. "
                             "Saving it again replaces them.",
                  then=lambda rules: url_for(".index", saved=rules.version))  # the page's script drops its draft


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


@bp.get("/prompts/<prompt_id>")
@console_required
def prompt_form(prompt_id: str):
    return form_page(prompt_id)


@bp.post("/prompts/<prompt_id>")
@console_required
def save_prompt(prompt_id: str):
    values = request.form.to_dict()
    return _saved(lambda: fields.save_form(current_app.config, prompt_id, values, _based_on(), g.operator.email,
                                           utcnow()),
                  refused=lambda error, status: form_page(prompt_id, values, error, status, _kept_based_on(status)),
                  stale_hint="The values here are yours: saving again writes them over that version "
                             "(what it changed in other prompts stays).",
                  then=lambda rules: url_for(".prompt_form", prompt_id=prompt_id))


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
    if request.endpoint == "console_prompt_rules.save_prompt":
        return form_page(request.view_args["prompt_id"], request.form.to_dict(), status=400,
                         error="The form had expired, so nothing was saved; the values below are yours: "
                               "save them again.",
                         based_on=_kept_based_on(400))
    return editor(text=request.form.get("rules"), status=400, based_on=_kept_based_on(400),
                  error="The form had expired, so nothing was saved; the text below is yours: save it again.")


def _saved(action, refused=None, stale_hint: str = "", then=lambda rules: url_for(".index")):
    """`action()`, then to `then(rules)`; a refusal: `refused(why, status)`, by default the
    editor with why."""
    refused = refused or (lambda error, status: editor(error=error, status=status))
    try:
        rules = action()
    except InvalidRules as error:
        return refused(f"Not saved: the rules are not valid: {error}.", 422)
    except edit.UnknownVersion as error:
        return refused(f"Not restored: {error}.", 404)
    except fields.UnknownPrompt as error:
        return refused(f"Not saved: {error}.", 404)
    except edit.StaleRules as error:
        return refused(f"Not saved: {error}. {stale_hint}".strip(), 409)
    except OSError as error:
        current_app.logger.error("prompt rules not saved: %s", error)
        return refused(f"Not saved: the rules file cannot be written ({error}).", 500)
    current_app.logger.info("prompt rules version %s saved by %s", rules.version, g.operator.email)
    flash(f"Saved as version {rules.version}: readers get it within a second. "
          + ("Prompts are on." if rules.enabled else "Every prompt is switched off."))
    return redirect(then(rules), 303)


def editor(text: str | None = None, error: str | None = None, status: int = 200, based_on: str | None = None):
    """The editor page; `text` in the editor instead of the rules in force (a refused save), made
    from the rules whose fingerprint is `based_on` (default: those in force)."""
    try:
        latest, versions = edit.current(current_app.config), edit.history(current_app.config)
    except OSError as read_error:
        return render_template("operator/prompt_rules.html", latest=None, text=text or "", versions=[],
                               error=f"The rules file cannot be read: {read_error}"), 500
    return render_template("operator/prompt_rules.html", latest=latest, text=latest.text if text is None else text,
                           versions=versions, error=error, prompt_ids=fields.prompt_ids(latest.text), based_on=based_on,
                           writable_to=edit.editable_path(current_app.config)), status


def form_page(prompt_id: str, values: dict | None = None, error: str | None = None, status: int = 200,
              based_on: str | None = None):
    """One prompt's form; `values` in it instead of the rules in force (a refused save, made
    from the rules whose fingerprint is `based_on`)."""
    try:
        latest = edit.current(current_app.config)
        shown = fields.form_of(latest.text, prompt_id)
    except fields.UnknownPrompt as unknown:
        return editor(error=f"{unknown}: it may have been renamed or removed since.", status=404)
    except InvalidRules as unreadable:
        return editor(error=f"The form cannot be shown: {unreadable}.", status=409)
    except OSError as read_error:
        return editor(error=f"The rules file cannot be read: {read_error}", status=500)
    return render_template("operator/prompt_rules_prompt.html", latest=latest, form=shown, fields=fields,
                           values=shown.values if values is None else fields.refilled(shown, values),
                           based_on=based_on, error=error), status


def _kept_based_on(status: int) -> str | None:
    """What a refused page says its text or values were made from: still the rules the operator
    opened, so a second save is checked against them too; after a 409 (someone saved in
    between, and the page says so) the rules in force, so saving again replaces them."""
    return None if status == 409 else (_based_on() or None)


def _based_on() -> str:
    """The fingerprint of the rules the form was made from (prompt_rules_edit.Current)."""
    return request.form.get("based_on", "")
