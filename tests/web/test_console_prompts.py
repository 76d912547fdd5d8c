"""The console's prompt report, /operator/prompts: the counters put in the test's Redis by
prompt_history as the slot records them, conversions as membership rows in the test's
database, the page read as a signed-in operator."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone

import pytest

from newsletter import memberships, prompt_history, prompts
from newsletter.mailcatcher import free_port
from newsletter.models import Membership
from newsletter.prompt_rules import parse_rules
from tests.support.console import location_path
from tests.support.prompts import rules_file
from tests.web.markup import parse

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
HOSTILE = '<script>alert("variant")</script>&co'
RULES = {"version": "console-7", "prompts": [
    {"id": "appeal", "kind": "membership", "priority": 50,
     "experiment": {"name": "exp", "control_share": 0.1, "variants": [{"id": "exp:a"}, {"id": HOSTILE}]}},
    {"id": "daily", "kind": "newsletter", "priority": 10}]}
APPEAL = parse_rules(RULES).prompts[0]


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


def shown(broker, variant_index: int | None, readers: int) -> None:
    """`readers` readers assigned to a variant of the appeal (None: the control), as the slot records it."""
    variant = None if variant_index is None else APPEAL.experiment.variants[variant_index]
    decision = prompts.Decision(prompt=APPEAL, variant=variant, control=variant is None, articles_read=3)
    for n in range(readers):
        prompt_history.record_decision(broker, reader_id(n), decision, NOW, 31)


def reader_id(n: int) -> str:
    # Readers are HyperLogLog counts, close but not exact: these ids happen to count exactly.
    return hashlib.md5(str(n).encode()).hexdigest()


def member_through(session, variant: str, path: str = "click") -> None:
    """A reader who paid through a checkout attributed to `variant`, as the webhook leaves it."""
    reader = memberships.new_reader(session, f"{secrets.token_hex(4)}@example.com")
    session.add(Membership(reader_id=reader.id, stripe_subscription_id=f"sub_{secrets.token_hex(6)}",
                           status="active", prompt="membership", prompt_variant=variant, prompt_path=path))
    session.commit()


def row_cells(page, variant: str) -> list[str]:
    return [cell.text() for cell in page.find("tr", data_variant=variant).elements]


def test_the_page_needs_a_signed_in_operator(client):
    response = client.get("/operator/prompts")
    assert response.status_code == 302
    assert location_path(response) == "/operator/login?next=/operator/prompts"
    assert client.get("/operator/prompts", headers={"Accept": "application/json"}).status_code == 401


def test_a_variants_figures_and_the_control(signed_in, session, broker):
    shown(broker, 0, 40)
    shown(broker, None, 5)
    for event in ("seen", "seen", "click", "dismiss"):
        prompt_history.record_event(broker, reader_id(0), event, "exp:a")
    for path in ("click", "click", "click", "assigned"):
        member_through(session, "exp:a", path)
    member_through(session, "exp:control", "assigned")
    member_through(session, "gate")

    response = signed_in.get("/operator/prompts")
    assert response.status_code == 200
    page = parse(response.data)
    assert "Rules version console-7" in page.text()
    assert row_cells(page, "exp:a") == ["exp:a", "40", "40", "2", "1", "1", "4", "3", "10.0 % (4.0–23.1 %)"]
    control = page.find("tr", data_variant="exp:control")
    assert "data-control" in control.attrs and "data-control" not in page.find("tr", data_variant="exp:a").attrs
    assert row_cells(page, "exp:control") == ["exp:control control", "5", "0", "0", "0", "0", "1", "0",
                                                "20.0 % (3.6–62.4 %)"]
    assert row_cells(page, "daily")[1:] == ["0", "0", "0", "0", "0", "0", "0", "— no readers yet"]

    appeal = page.find("table", data_prompt="appeal")
    assert "experiment exp" in appeal.find("caption").text()
    assert all(th.attrs.get("scope") == "col" for th in appeal.find("thead").find_all("th"))
    assert page.find("tr", data_source="gate").text() == "gate 1"
    assert page.find("a", aria_current="page").text() == "Prompts"


def test_a_hostile_variant_id_from_the_rules_file_is_escaped(signed_in, broker):
    shown(broker, 1, 2)
    html = signed_in.get("/operator/prompts").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;variant&#34;)&lt;/script&gt;&amp;co" in html
    assert row_cells(parse(html.encode()), HOSTILE)[:2] == [HOSTILE, "2"]


def test_nothing_counted_yet(signed_in):
    page = parse(signed_in.get("/operator/prompts").data)
    assert "Nothing counted yet" in page.text()
    assert not page.find_all("table")


def test_rules_without_prompts(app, signed_in, tmp_path):
    app.config["PROMPT_RULES"] = rules_file(tmp_path, {"version": "none", "prompts": []}, "empty.json")
    assert "The rules have no prompts" in parse(signed_in.get("/operator/prompts").data).text()


def test_a_rules_file_that_cannot_be_read_is_said(app, signed_in, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    app.config["PROMPT_RULES"] = str(broken)
    response = signed_in.get("/operator/prompts")
    assert response.status_code == 200
    assert "The prompt rules cannot be read" in parse(response.data).find("p", role="alert").text()


@pytest.mark.parametrize("redis_at, notice", [
    ("nobody listens", "Counts unavailable: Redis did not answer."),
    (None, "Counts unavailable: no Redis is configured"),
])
def test_without_redis_the_page_still_renders_with_a_notice(app, signed_in, session, redis_at, notice):
    member_through(session, "gate")
    # Set before the page's first look at Redis; signing in (its rate limit) used the real one.
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0" if redis_at else None
    response = signed_in.get("/operator/prompts")
    assert response.status_code == 200
    page = parse(response.data)
    assert notice in page.find("p", role="alert").text()
    assert not page.find_all("tr", data_variant="exp:a")
    assert page.find("tr", data_source="gate").text() == "gate 1"  # from the database, still there
