"""The rules file's checks: every bad document is an InvalidRules naming the key at fault (the
console shows its message to the operator who typed it), never another exception."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.prompt_rules import DEFAULT_PATH, InvalidRules, Rules, load_rules, parse_rules

SHIPPED = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
CARD = {"id": "card", "kind": "update_card", "priority": 100}
VARIANT = {"id": "exp:a", "copy": {"title": "Hello", "body": ["{articles_read} stories"], "button": "{price}"}}
VARIANTS = "prompts[1].experiment.variants"


def appeal(**overrides) -> dict:
    return {"id": "appeal", "kind": "membership", "priority": 50, "min_reads": 3,
            "frequency_cap": {"impressions": 4, "window_days": 30, "min_gap_hours": 0},
            "experiment": {"name": "exp", "control_share": 0.1, "variants": [VARIANT]}, **overrides}


def document(**overrides) -> dict:
    """A valid document whose prompts[1], the appeal, has `overrides`."""
    return {"version": "t", "prompts": [CARD, appeal(**overrides)]}


def with_cap(**cap) -> dict:
    return document(frequency_cap={"impressions": 4, "window_days": 30, **cap})


def with_experiment(**experiment) -> dict:
    return document(experiment={"name": "exp", "variants": [VARIANT], **experiment})


def with_variant(**variant) -> dict:
    return with_experiment(variants=[VARIANT | variant])


def with_copy(**texts) -> dict:
    return with_variant(copy=texts)


def message_id(value) -> str | None:
    """A case is named by its message; pytest numbers the documents."""
    return value if isinstance(value, str) else None


def refusal(data) -> str:
    with pytest.raises(InvalidRules) as refused:
        parse_rules(data)
    return str(refused.value)


WHOLE = "a whole number from {} to {}".format
NUMBER = "a number from {} to {}".format
DAYS, HOURS, READS, IMPRESSIONS = 3660, 87840, 200, 100  # the most a reader's history keeps
PRIORITY = "prompts[1].priority: " + WHOLE(-1000000, 1000000)
VERSION = "version: a non-empty string of at most 100 characters, or a number"
VARIANT_ID = f"{VARIANTS}[0].id: a non-empty string of at most 100 characters"
WEIGHT = f"{VARIANTS}[0].weight: " + NUMBER(0, 1000)
SHARE = "prompts[1].experiment.control_share: from 0 up to (not including) 1"
TOKENS = "only {articles_read} and {price} are filled in"


@pytest.mark.parametrize("data, message", [
    (document(priority="high"), PRIORITY),
    (document(priority=2.5), PRIORITY),
    (document(priority=True), PRIORITY),
    (document(priority=None), PRIORITY),
    (document(priority=json.loads("1e400")), PRIORITY),
    (document(priority=10**30), PRIORITY),
    (document(min_reads=-1), "prompts[1].min_reads: " + WHOLE(0, READS)),
    (document(min_reads=READS + 1), "prompts[1].min_reads: " + WHOLE(0, READS)),  # never reached: 200 are kept
    (document(read_window_days=10**30), "prompts[1].read_window_days: " + WHOLE(0, DAYS)),
    (document(read_window_days=float("nan")), "prompts[1].read_window_days: " + WHOLE(0, DAYS)),
    (document(snooze_days=-1), "prompts[1].snooze_days: " + NUMBER(0, DAYS)),
    (document(snooze_days="7"), "prompts[1].snooze_days: " + NUMBER(0, DAYS)),
    (document(snooze_days=False), "prompts[1].snooze_days: " + NUMBER(0, DAYS)),
    (document(snooze_days=float("inf")), "prompts[1].snooze_days: " + NUMBER(0, DAYS)),
    (document(frequency_cap=[1]), "prompts[1].frequency_cap: an object (or null)"),
    (with_cap(impressions=-1), "prompts[1].frequency_cap.impressions: " + WHOLE(0, IMPRESSIONS)),
    (with_cap(impressions=IMPRESSIONS + 1), "prompts[1].frequency_cap.impressions: " + WHOLE(0, IMPRESSIONS)),
    (with_cap(window_days=DAYS + 1), "prompts[1].frequency_cap.window_days: " + WHOLE(0, DAYS)),
    (with_cap(min_gap_hours=HOURS + 1), "prompts[1].frequency_cap.min_gap_hours: " + NUMBER(0, HOURS)),
    (with_cap(min_gap_hours=float("nan")), "prompts[1].frequency_cap.min_gap_hours: " + NUMBER(0, HOURS)),
    (document(enabled="false"), "prompts[1].enabled: true or false"),
    (document(starts=20261101), "prompts[1].starts: an ISO date or date-time"),
    (document(starts="2026-12-01", ends="2026-11-01"), "prompts[1].ends: later than starts"),
    (document(starts="2026-12-01", ends="2026-12-01T00:00:00+00:00"), "prompts[1].ends: later than starts"),
    (document(exclude_sections=["World", 3]), "prompts[1].exclude_sections[1]: a string"),
    (document(exclude_tags="sponsored"), "prompts[1].exclude_tags: a list"),
    (document(id=5), "prompts[1].id: letters, digits, and . _ : - only (at most 50)"),
    (document(experiment=5), "prompts[1].experiment: an object (or null)"),
], ids=message_id)
def test_a_bad_prompt_is_refused_with_its_key_named(data, message):
    assert refusal(data) == message


@pytest.mark.parametrize("data, message", [
    (with_experiment(variants="exp:a"), f"{VARIANTS}: a list"),
    (with_experiment(variants=[]), f"{VARIANTS}: at least one variant"),
    (with_experiment(variants=["exp:a"]), f"{VARIANTS}[0]: an object with an id"),
    (with_experiment(variants=[{"copy": {}}]), VARIANT_ID),
    (with_variant(id=5), VARIANT_ID),
    (with_variant(id=" "), VARIANT_ID),
    (with_variant(id="x" * 101), VARIANT_ID),  # Membership.prompt_variant keeps 100
    (with_variant(weight="x"), WEIGHT),
    (with_variant(weight=True), WEIGHT),
    (with_variant(weight=-1), WEIGHT),
    (with_variant(weight=float("nan")), WEIGHT),
    (with_variant(weight=0), f"{VARIANTS}: at least one weight above 0"),
    (with_experiment(control_share="0.1"), SHARE),
    (with_experiment(control_share=True), SHARE),
    (with_experiment(control_share=float("nan")), SHARE),
    (with_experiment(name=5), "prompts[1].experiment.name: a non-empty string of at most 92 characters"),
    (with_experiment(name="n" * 93), "prompts[1].experiment.name: a non-empty string of at most 92 characters"),
    (with_experiment(control_id=[]), "prompts[1].experiment.control_id: a non-empty string of at most 100 characters"),
], ids=message_id)
def test_a_bad_experiment_is_refused_with_its_key_named(data, message):
    assert refusal(data) == message


@pytest.mark.parametrize("data, message", [
    (with_variant(copy="text"), f"{VARIANTS}[0].copy: an object (or null)"),
    (with_copy(title=5), f"{VARIANTS}[0].copy.title: a string"),
    (with_copy(button=["Join"]), f"{VARIANTS}[0].copy.button: a string"),
    (with_copy(body="One paragraph"), f"{VARIANTS}[0].copy.body: a list"),
    (with_copy(body=["One", None]), f"{VARIANTS}[0].copy.body[1]: a string"),
    (with_copy(subtitle="x"), f"{VARIANTS}[0].copy.subtitle: not a key of copy: title, body (a list of "
                              "paragraphs) and button only"),
    (with_copy(body=["You read {artcles_read} stories"]),
     f"{VARIANTS}[0].copy.body[0]: unknown token {{artcles_read}} in variant exp:a; {TOKENS}"),
    (with_copy(button="Join for { price }"),
     f"{VARIANTS}[0].copy.button: unknown token {{ price }} in variant exp:a; {TOKENS}"),
    (with_copy(title="{Price}"), f"{VARIANTS}[0].copy.title: unknown token {{Price}} in variant exp:a; {TOKENS}"),
], ids=message_id)
def test_bad_copy_is_refused_with_the_variant_named(data, message):
    assert refusal(data) == message


@pytest.mark.parametrize("data, message", [
    ({"version": "", "prompts": []}, VERSION),
    ({"version": "  ", "prompts": []}, VERSION),
    ({"version": "v" * 101, "prompts": []}, VERSION),
    ({"version": True, "prompts": []}, VERSION),
    ({"version": None, "prompts": []}, VERSION),
    ({"version": [1], "prompts": []}, VERSION),
    ({"version": float("nan"), "prompts": []}, VERSION),
    ({"version": 10**5000, "prompts": []}, VERSION),
    ({"version": "t", "enabled": "no", "prompts": []}, "enabled: true or false"),
    ({"version": "t", "enabled": 0, "prompts": []}, "enabled: true or false"),
    ({"version": "t", "prompts": {"card": CARD}}, "prompts: a list"),
    ({"version": "t", "prompts": [5]}, "prompts[0].id: letters, digits, and . _ : - only (at most 50)"),
    ({"version": "t", "prompts": [CARD, appeal(experiment={"name": "card", "variants": [{"id": "card"}]})]},
     "rules: ids used twice: card"),
    ([], "rules: a JSON object with a `version` is needed"),
], ids=message_id)
def test_a_bad_document_is_refused_with_its_key_named(data, message):
    assert refusal(data) == message


@pytest.mark.parametrize("text", ["1" * 5000, "[" * 100_000, '{"version": "\udcff"'], ids=["10**5000", "deep", "utf8"])
def test_a_file_that_is_not_json_is_refused(tmp_path, text):
    path = tmp_path / "rules.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(InvalidRules, match="not JSON"):
        load_rules(path)


def test_what_parsed_before_parses_the_same():
    """Whole numbers written as 30.0, a numeric version, empty names and null objects."""
    rules = parse_rules({"version": 7, "prompts": [
        appeal(priority=50.0, read_window_days=30.0, frequency_cap=None, starts=None,
               experiment={"name": "", "control_id": "", "variants": [{"id": "exp:a"}]}),
        CARD | {"experiment": None}]})
    card, prompt = rules.prompts
    assert rules.version == "7" and card.experiment is None
    assert (prompt.priority, prompt.read_window_days, prompt.cap_impressions) == (50, 30, 0)
    assert type(prompt.priority) is int and type(prompt.read_window_days) is int
    assert (prompt.experiment.name, prompt.experiment.control_id) == ("appeal", "appeal:control")


def test_the_longest_ids_fit_where_a_conversion_is_kept():
    rules = parse_rules(with_experiment(name="n" * 92, variants=[VARIANT | {"id": "v" * 100}]))
    experiment = rules.prompts[1].experiment  # after the card notice, by priority
    assert len(experiment.control_id) == len(experiment.variants[0].id) == 100


def test_history_is_kept_as_long_as_the_longest_gap():
    # A 60-day gap between two impressions needs the impressions kept past the 30-day windows.
    rules = parse_rules(with_cap(min_gap_hours=60 * 24))
    assert rules.history_days == 61


def test_copy_keeps_braces_that_are_no_token():
    rules = parse_rules(with_copy(title="{} and {:)} stay", body=["{price}, {articles_read}"]))
    assert rules.prompts[1].experiment.variants[0].copy["title"] == "{} and {:)} stay"


# ---------------------------------------------------------------- any document at all

NEAR_MISSES = st.sampled_from([None, True, False, 0, -1, 1.5, 10**30, float("nan"), float("inf"), -0.0, "",
                               "x", "2026-11-01", "{artcles_read}", "{price}", [], {}, [1], {"id": "x"}])
KEYS = st.sampled_from(["version", "enabled", "prompts", "id", "kind", "priority", "starts", "ends", "min_reads",
                        "read_window_days", "frequency_cap", "impressions", "window_days", "min_gap_hours",
                        "snooze_days", "exclude_sections", "exclude_tags", "experiment", "name", "control_id",
                        "control_share", "variants", "weight", "copy", "title", "body", "button"]) | st.text(max_size=8)
json_values = st.recursive(
    NEAR_MISSES | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20)


# Documents of the right shape with any values: past the id and kind checks, into the rest.
PROMPT_KEYS = ["priority", "enabled", "starts", "ends", "min_reads", "read_window_days", "frequency_cap",
               "snooze_days", "exclude_sections", "exclude_tags"]
experiment_like = st.fixed_dictionaries({}, optional={
    "variants": st.lists(st.dictionaries(KEYS, json_values, max_size=4), max_size=3),
    "control_share": json_values, "name": json_values, "control_id": json_values})
prompt_like = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b"]), "kind": st.sampled_from(["membership", "newsletter"])},
    optional=dict.fromkeys(PROMPT_KEYS, json_values) | {"experiment": experiment_like | json_values})
shaped = st.fixed_dictionaries({"version": json_values, "prompts": st.lists(prompt_like, max_size=3)},
                               optional={"enabled": json_values})


@st.composite
def mutations(draw) -> dict:
    """The shipped rules with a few values (a leaf, a key's value, a list item) replaced by
    random JSON, or removed."""
    data = copy.deepcopy(SHIPPED)
    for _ in range(draw(st.integers(1, 3))):
        data = mutated(draw, data)
    return data


def mutated(draw, node):
    if not isinstance(node, (dict, list)) or not node or draw(st.integers(0, 5)) == 0:
        return copy.deepcopy(draw(json_values))  # NEAR_MISSES' [1] is one object: a later mutation must not change it
    key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
    if draw(st.integers(0, 9)) == 0:
        del node[key]
    else:
        node[key] = mutated(draw, node[key])
    return node


@settings(max_examples=400, deadline=None)
@given(data=json_values | st.dictionaries(KEYS, json_values, max_size=6) | shaped | mutations())
def test_any_document_parses_or_is_refused(data):
    try:
        rules = parse_rules(data)
    except InvalidRules as refused:
        assert str(refused)
        return
    assert isinstance(rules, Rules)
    seconds = [rules.history_days * 86400] + [p.cap_window_days * 86400 for p in rules.prompts]
    assert all(isinstance(s, int) and 0 <= s < 2**53 for s in seconds)  # Redis's Lua takes them as numbers
