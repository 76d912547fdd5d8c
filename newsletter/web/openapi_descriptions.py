"""What each /api/v1 operation takes and answers, written by hand: the one place to describe
a route (newsletter.web.openapi builds the document from the URL map and these).

OPERATIONS is keyed by endpoint, then method; SCHEMAS and RESPONSES are the document's
components.
"""
from __future__ import annotations

INFO = {
    "title": "The Daily Edition API",
    "version": "1",
    "description": "Articles and newsletter sign-ups for pages and apps; editions, suppressions "
                   "and list counts for operators, with a bearer token from "
                   "`newsletter operator token EMAIL`. Errors are "
                   '`{"error": {"code", "message", "field"?}}`.',
}

SECURITY_SCHEMES = {"operatorToken": {"type": "http", "scheme": "bearer",
                                      "description": "A token from `newsletter operator token EMAIL`."}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _response(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


def _operator(operation: dict) -> dict:
    """An operator route: a bearer token, or 401."""
    return operation | {"security": [{"operatorToken": []}],
                        "responses": operation["responses"] | {"401": _response("Unauthorized")}}


def _edition_control(summary: str, description: str, flag: str) -> dict:
    schema = {"allOf": [_ref("Progress"), {"type": "object", "required": [flag],
                                           "properties": {flag: {"type": "boolean" if flag == "changed" else "integer"}}}]}
    return _operator({"summary": summary, "description": description, "tags": ["editions"],
                      "responses": {"200": _json(schema, "The edition's progress after the call."),
                                    "404": _response("NotFound")}})


_COUNT = {"type": "integer", "minimum": 0}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "examples": ["not_found", "invalid", "unknown_article"]},
                           "message": {"type": "string"},
                           "field": {"type": ["string", "null"], "description": "The request field at fault."}}}},
    },
    "Article": {
        "type": "object",
        "required": ["slug", "headline", "byline", "published_at", "paragraphs", "images", "notes"],
        "properties": {
            "slug": {"type": "string"}, "headline": {"type": "string"}, "byline": {"type": "string"},
            "published_at": {"type": "string", "format": "date-time"},
            "paragraphs": {"type": "array", "items": {"type": "string"}},
            "images": {"type": "array", "items": {
                "type": "object", "required": ["caption", "credit"],
                "properties": {"caption": {"type": "string"}, "credit": {"type": "string"}}}},
            "notes": {"type": "array", "items": {"type": "string"}},
            "section": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "access": {"type": "string"}, "url": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time"},
            "body": {"type": "array", "description": "Paragraph and image blocks in reading order.",
                     "items": {"type": "object", "required": ["type"],
                               "properties": {"type": {"enum": ["paragraph", "image"]}}}},
        },
    },
    "Signup": {
        "type": "object", "required": ["email", "consent"],
        "properties": {"email": {"type": "string", "format": "email"}, "consent": {"const": True},
                       "article": {"type": "string", "description": "The slug of the page's article."},
                       "page": {"type": "string", "description": "The page's URL (default: Referer)."}},
    },
    "SignupAccepted": {"type": "object", "required": ["status"],
                       "properties": {"status": {"const": "pending_confirmation"}}},
    "Reports": {
        "type": "object", "required": ["reports"],
        "properties": {"reports": {"type": "array", "maxItems": 1000, "items": {
            "type": "object", "required": ["email", "type"],
            "properties": {"email": {"type": "string"},
                           "type": {"enum": ["hard", "soft", "complaint", "bounce"]},
                           "bounce_type": {"enum": ["Permanent", "Transient", "Undetermined"],
                                           "description": "With type bounce (Amazon SES)."},
                           "at": {"type": "string", "format": "date-time"},
                           "detail": {"type": "string"}}}}},
    },
    "ReportSummary": {
        "type": "object", "required": ["processed", "duplicates", "suppressed", "unsubscribed", "invalid"],
        "properties": {"processed": _COUNT, "duplicates": _COUNT, "suppressed": _COUNT, "unsubscribed": _COUNT,
                       "invalid": {"type": "array", "items": {
                           "type": "object", "required": ["index", "message"],
                           "properties": {"index": _COUNT, "message": {"type": "string"}}}}},
    },
    "SubscriberCounts": {
        "type": "object", "required": ["pending", "confirmed", "unsubscribed", "suppressed"],
        "properties": {"pending": _COUNT, "confirmed": _COUNT, "unsubscribed": _COUNT, "suppressed": _COUNT},
    },
    "EditionRequest": {
        "type": "object",
        "properties": {"date": {"type": "string", "format": "date",
                                "description": "The edition's date; default: today in the newsroom's zone."},
                       "articles": {"type": "array", "items": {"type": "string"},
                                    "description": "Slugs in order; default: the stories published that day."},
                       "latest": {"type": "boolean", "default": False,
                                  "description": "When the day has no stories, take the newest ones."}},
    },
    "EditionCreated": {
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "integer"}, "date": {"type": "string", "format": "date"},
                       "state": {"const": "draft"}, "subject": {"type": "string"},
                       "articles": {"type": "array", "items": {"type": "string"}}},
    },
    "Progress": {
        "type": "object", "required": ["id", "state", "total", "sent", "failed", "pending"],
        "properties": {"id": {"type": "integer"},
                       "state": {"enum": ["draft", "sending", "paused", "cancelled", "sent"]},
                       "total": _COUNT, "sent": _COUNT, "failed": _COUNT, "pending": _COUNT, "skipped": _COUNT,
                       "rate": {"type": "number", "description": "Messages per second over the last minute."},
                       "eta_seconds": {"type": ["integer", "null"]}},
    },
}

SCHEMAS |= {
    "PromptSlot": {
        "type": "object", "required": ["show", "prompt", "variant", "html"],
        "properties": {"show": {"type": "boolean"},
                       "prompt": {"enum": ["membership", "newsletter", "update_card", None]},
                       "variant": {"type": ["string", "null"],
                                   "description": "Send it back with the events; the checkout form carries it."},
                       "html": {"type": "string", "description": "The slot's HTML; empty when `show` is false."}},
    },
    "PromptEvent": {
        "type": "object", "required": ["event", "prompt", "variant"],
        "properties": {"event": {"enum": ["seen", "click", "dismiss"]},
                       "prompt": {"enum": ["membership", "newsletter", "update_card"]},
                       "variant": {"type": "string"}, "article": {"type": "string"}},
    },
    "PromptReport": {
        "type": "object", "required": ["rules_version", "variants"],
        "properties": {"rules_version": {"type": "string"}, "variants": {"type": "array", "items": {
            "type": "object",
            "required": ["prompt", "variant", "control", "readers", "conversions", "clicks_converted", "rate",
                         "low", "high"],
            "properties": {"prompt": {"type": "string"}, "variant": {"type": "string"},
                           "control": {"type": "boolean"}, "readers": _COUNT, "impressions": _COUNT,
                           "seen": _COUNT, "clicks": _COUNT, "dismissals": _COUNT, "seen_readers": _COUNT,
                           "click_readers": _COUNT, "dismiss_readers": _COUNT, "conversions": _COUNT,
                           "clicks_converted": {**_COUNT, "description": "Of the conversions, those whose "
                                                "checkout came from the variant's own button (the rest: "
                                                "readers assigned to it who joined elsewhere)."},
                           "rate": {"type": "number"}, "low": {"type": "number"}, "high": {"type": "number"}}}},
                       "other_conversions": {"type": "object", "additionalProperties": _COUNT}},
    },
    "PromptRules": {
        "type": "object", "required": ["version", "saved_at", "saved_by", "enabled", "rules"],
        "properties": {"version": {"type": ["string", "null"], "description": "Null: the file in force "
                                   "cannot be read."},
                       "saved_at": {"type": ["string", "null"]}, "saved_by": {"type": ["string", "null"]},
                       "enabled": {"type": "boolean", "description": "The kill switch."},
                       "rules": {"type": ["object", "null"], "description": "The rules document "
                                 "(docs/prompts.md, \"The rules file\")."}},
    },
}

RESPONSES = {
    "Unauthorized": _json(_ref("Error"), "No operator token, or an unknown or revoked one."),
    "NotFound": _json(_ref("Error"), "No such edition."),
    "Invalid": _json(_ref("Error"), "The request cannot be carried out; `field` names the culprit."),
}

OPERATIONS = {
    "openapi.document": {"get": {
        "summary": "This document", "tags": ["meta"],
        "responses": {"200": {"description": "The OpenAPI 3.1 description of every /api/v1 route.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "api.article": {"get": {
        "summary": "An article", "tags": ["articles"],
        "responses": {"200": _json(_ref("Article"), "The article, promotional boxes left out."),
                      "404": _json(_ref("Error"), "No article has this slug.")}}},
    "api.signup": {"post": {
        "summary": "Sign up to the Daily Edition",
        "description": "Starts the double opt-in: a confirmation mail goes to the address. The answer "
                       "is the same for new and known addresses. Rate limited per IP and per address; "
                       "allowed from the browsers of the origins in CORS_ORIGINS.",
        "tags": ["newsletter"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Signup")}}},
        "responses": {"202": _json(_ref("SignupAccepted"), "Taken; a mail follows when one is due."),
                      "413": _json(_ref("Error"), "The body is too large."),
                      "415": _json(_ref("Error"), "The body is not JSON."),
                      "422": _response("Invalid"),
                      "429": _json(_ref("Error"), "Too many sign-ups; see Retry-After.")}}},
    "operator_api.suppression_reports": {"post": _operator({
        "summary": "Report bounces and complaints",
        "description": "Applies the suppression rules; each report can be sent again safely.",
        "tags": ["subscribers"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Reports")}}},
        "responses": {"200": _json(_ref("ReportSummary"), "What the reports did."),
                      "400": _json(_ref("Error"), "Not a reports object."),
                      "413": _json(_ref("Error"), "More than 1,000 reports.")}})},
    "operator_api.subscriber_counts": {"get": _operator({
        "summary": "Subscribers by state", "tags": ["subscribers"],
        "responses": {"200": _json(_ref("SubscriberCounts"), "Counts, zeros included.")}})},
    "editions_api.create": {"post": _operator({
        "summary": "Create a draft edition",
        "tags": ["editions"],
        "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("EditionRequest")}}},
        "responses": {"201": _json(_ref("EditionCreated"), "Created; Location is its progress."),
                      "400": _json(_ref("Error"), "The body is not JSON."),
                      "422": _response("Invalid")}})},
    "editions_api.show": {"get": _operator({
        "summary": "An edition's progress",
        "description": "As `newsletter edition status ID --json`.",
        "tags": ["editions"],
        "responses": {"200": _json(_ref("Progress"), "State and delivery counts."),
                      "404": _response("NotFound")}})},
    "editions_api.send": {"post": _operator({
        "summary": "Send an edition",
        "description": "Queues the send of a draft. A second call while it runs (or after) changes "
                       "nothing and answers the same; `started` says whether this call started it.",
        "tags": ["editions"],
        "responses": {"202": _json({"allOf": [_ref("Progress"), {
                          "type": "object", "required": ["started"],
                          "properties": {"started": {"type": "boolean"}}}]}, "Queued, or running already."),
                      "404": _response("NotFound"),
                      "409": _json(_ref("Error"), "The edition was cancelled.")}})},
    "api.csrf_token": {"get": {
        "summary": "This browser's CSRF token",
        "description": "For the forms of pages every reader shares (front page, stories), which carry "
                       "none so that they can be cached; /assets/csrf.js fetches it when such a form is "
                       "sent. Sets the session cookie; no CORS. Never cached.",
        "tags": ["meta"],
        "responses": {"200": _json({"type": "object", "required": ["csrf_token"],
                                    "properties": {"csrf_token": {"type": "string"}}}, "The token.")}}},
    "prompt_api.prompt": {"get": {
        "summary": "What the prompt slot shows this reader",
        "description": "For article pages served from a cache: decides for the reader of this request "
                       "(cookies `rid`, `member`, `subscriber`), counts the story as read and sets `rid` "
                       "the first time. Never cached.",
        "tags": ["prompts"],
        "parameters": [{"name": "article", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _json(_ref("PromptSlot"), "The decision and its HTML."),
                      "404": _json(_ref("Error"), "No article has this slug.")}}},
    "prompt_api.prompt_events": {"post": {
        "summary": "Report a prompt seen, clicked or dismissed",
        "description": "From the reader the prompt was shown to; a dismissal keeps the prompt away for "
                       "its snooze.",
        "tags": ["prompts"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("PromptEvent")}}},
        "responses": {"204": {"description": "Taken (counted where the reader can have been shown it)."},
                      "400": _json(_ref("Error"), "The body is not JSON."),
                      "415": _json(_ref("Error"), "Not sent as application/json."),
                      "422": _response("Invalid")}}},
    "prompt_api.report": {"get": _operator({
        "summary": "Per-variant prompt results",
        "description": "As `newsletter prompts report --json`: readers, impressions, events, conversions "
                       "by assignment (clicks_converted: those through the variant's own button), "
                       "conversion rate with a 95 % Wilson interval.",
        "tags": ["prompts"],
        "responses": {"200": _json(_ref("PromptReport"), "One row per variant and control."),
                      "503": _json(_ref("Error"), "No Redis is configured, or it did not answer.")}})},
    "prompt_api.rules": {"get": _operator({
        "summary": "The prompt rules in force",
        "description": "The document and who saved it when. The ETag (a fingerprint of the file) is what "
                       "a PUT names in If-Match.",
        "tags": ["prompts"],
        "responses": {"200": _json(_ref("PromptRules"), "The rules in force.")}})},
    "prompt_api.save_rules": {"put": _operator({
        "summary": "Save the prompt rules as a new version",
        "description": "The body is the rules document (at most 256 kB). Checked as the loader does, then "
                       "saved as the next dated version, with `saved_by` `api:<operator>`, as the console's "
                       "editor does. `If-Match` must name the ETag of the rules in force (`*`: whichever "
                       "they are, if readable); weak tags never match.",
        "tags": ["prompts"],
        "parameters": [{"name": "If-Match", "in": "header", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {"200": _json(_ref("PromptRules"), "Saved: the new version (and its ETag)."),
                      "412": _json(_ref("Error"), "The rules changed since the ETag If-Match names."),
                      "413": _json(_ref("Error"), "The body is larger than 256 kB."),
                      "422": _response("Invalid"),
                      "428": _json(_ref("Error"), "No If-Match header.")}})},
    "editions_api.pause": {"post": _edition_control(
        "Pause a send", "Batches stop before their next message; the rest stays pending.", "changed")},
    "editions_api.resume": {"post": _edition_control(
        "Resume a paused send", "The pending deliveries are queued again.", "changed")},
    "editions_api.cancel": {"post": _edition_control(
        "Cancel an edition", "A draft or a running send; every pending delivery is skipped.", "changed")},
    "editions_api.resend_failed": {"post": _edition_control(
        "Send the failed deliveries again", "Each failed delivery gets a fresh set of attempts; "
        "`resent` says how many.", "resent")},
}
