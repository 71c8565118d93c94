"""Rule sets kept in the metadata store: versions, refusal of bad documents, the default,
what an instance follows and assignment."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.catalog import instances
from opendms.errors import DmsError, ErrorCode
from opendms.identity.secrets import SecretBox
from opendms.identity.service import create_tenant
from opendms.rulebook import rule_sets, rules, templates
from opendms.store.db import Store
from opendms.store.models import Instance, SecurityRuleSet, WorkflowTemplate
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target

STRICT = """\
default_risk: HIGHEST
templates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner->DBA, HIGHEST: Owner->DBA->Admin}
rules:
  - {name: dev, when: {env: [dev]}, risk: LOW}
"""
RELAXED = "default_risk: LOW\ntemplates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: Admin}\n"


def refused(store: Store, tid: int, source: str, name: str = "strict") -> str:
    with pytest.raises(DmsError) as err, store.session() as s:
        rule_sets.load(s, tid, name, source)
    assert err.value.code == ErrorCode.RULE_SET_INVALID
    assert err.value.code.value == "InvalidSecurityRuleSet"
    return err.value.message


def current(store: Store, tid: int, name: str) -> rule_sets.Loaded:
    with store.session() as s:
        return rule_sets.get(s, tid, name)


def test_load_get_and_versions(store: Store, tid: int) -> None:
    with store.session() as s:
        row = rule_sets.load(s, tid, "strict", STRICT)
        assert (row.name, row.version, row.source) == ("strict", 1, STRICT)
    loaded = current(store, tid, "strict")
    assert (loaded.name, loaded.version, loaded.source) == ("strict", 1, STRICT)
    assert loaded.rule_set == rules.parse(STRICT)
    with store.session() as s:
        assert rule_sets.load(s, tid, "strict", RELAXED).version == 2
    with store.session() as s:
        assert rule_sets.load(s, tid, "strict", STRICT).version == 3  # same text: a new version
    loaded = current(store, tid, "strict")
    assert (loaded.version, loaded.source, loaded.rule_set.default_risk) == (3, STRICT, "HIGHEST")
    with store.session() as s:
        assert [(r.name, r.version) for r in rule_sets.list_names(s, tid)] == [("strict", 3)]


def test_names_are_trimmed_and_checked(store: Store, tid: int) -> None:
    with store.session() as s:
        assert rule_sets.load(s, tid, "  padded ", RELAXED).name == "padded"
    assert current(store, tid, "padded").version == 1
    for bad in ("", "   ", "x" * 257):
        with pytest.raises(DmsError) as err, store.session() as s:
            rule_sets.load(s, tid, bad, RELAXED)
        assert err.value.code == ErrorCode.INVALID_PARAMETER


def test_rule_sets_belong_to_their_tenant(store: Store, tid: int) -> None:
    with store.session() as s:
        other = create_tenant(s, "other").tid
        rule_sets.load(s, tid, "strict", STRICT)
        rule_sets.load(s, other, "strict", RELAXED)
    assert current(store, tid, "strict").source == STRICT
    assert current(store, other, "strict").source == RELAXED
    assert current(store, other, "strict").version == 1
    with store.session() as s:
        third = create_tenant(s, "third").tid
    with pytest.raises(DmsError) as err:
        current(store, third, "strict")
    assert err.value.code == ErrorCode.RULE_SET_NOT_FOUND


def test_get_unknown_name(store: Store, tid: int) -> None:
    with pytest.raises(DmsError) as err:
        current(store, tid, "nope")
    assert err.value.code == ErrorCode.RULE_SET_NOT_FOUND
    assert "nope" in err.value.message


BAD = [
    ("templates: {LOW: a\nrules: [\n", "line 2: not valid YAML or JSON"),
    ("- not a mapping\n", "line 1: a rule set is a mapping"),
    (STRICT.replace("risk: LOW", "risk: LOWISH"), "line 4: rules.0.risk:"),
    (STRICT.replace("MIDDLE: Owner", "MIDDLE: Nobody"), "no template named 'Nobody'"),
    (
        STRICT + "by_ticket_type:\n  DATA_EXPORT: {HIGH: Ghost, LOW: Phantom}\n",
        "no template named 'Ghost', 'Phantom' in this tenant",
    ),
]


def test_a_bad_document_is_refused_and_the_previous_version_stays(store: Store, tid: int) -> None:
    with store.session() as s:
        rule_sets.load(s, tid, "strict", STRICT)
    for source, message in BAD:
        assert message in refused(store, tid, source)
        loaded = current(store, tid, "strict")
        assert (loaded.source, loaded.version) == (STRICT, 1)
    with store.session() as s:  # and a good one still loads as the next version
        assert rule_sets.load(s, tid, "strict", RELAXED).version == 2


def test_a_bad_first_document_stores_nothing(store: Store, tid: int) -> None:
    refused(store, tid, "templates: [\n", name="fresh")
    with pytest.raises(DmsError) as err:
        current(store, tid, "fresh")
    assert err.value.code == ErrorCode.RULE_SET_NOT_FOUND
    with store.session() as s:
        assert rule_sets.list_names(s, tid) == []


def test_templates_must_exist_in_the_tenant(store: Store, tid: int) -> None:
    custom = RELAXED.replace("HIGHEST: Admin", "HIGHEST: Release")
    with store.session() as s:
        other = create_tenant(s, "other").tid
        templates.create_template(s, other, "Release", ["Admin"])
    assert "no template named 'Release' in this tenant" in refused(store, tid, custom)
    with store.session() as s:
        templates.create_template(s, tid, "Release", ["DBA", "Admin"])
        assert rule_sets.load(s, tid, "strict", custom).version == 1


def test_a_disabled_template_is_refused(store: Store, tid: int) -> None:
    custom = RELAXED.replace("HIGHEST: Admin", "HIGHEST: Release")
    with store.session() as s:
        templates.create_template(s, tid, "Release", ["DBA", "Admin"])
        rule_sets.load(s, tid, "strict", custom)
        rule_sets.load(s, tid, "default", RELAXED)
    with store.session() as s:
        for t in s.query(WorkflowTemplate).filter_by(tid=tid, name="Release"):
            t.enabled = False
    assert refused(store, tid, custom) == "templates: 'Release' is disabled"
    assert (current(store, tid, "strict").version, current(store, tid, "strict").source) == (
        1,
        custom,
    )
    # a disabled system template too, and the loaded default stays as it was
    with store.session() as s:
        for t in s.query(WorkflowTemplate).filter_by(tid=tid, name="DBA"):
            t.enabled = False
    assert "'DBA' is disabled" in refused(store, tid, RELAXED, "default")
    assert (current(store, tid, "default").version, current(store, tid, "default").source) == (
        1,
        RELAXED,
    )


def test_no_approval_names_need_no_template(store: Store, tid: int) -> None:
    source = "templates: {LOW: '-1', MIDDLE: none, HIGH: -1, HIGHEST: Admin}\n"
    with store.session() as s:
        rs = rule_sets.validate(s, tid, source)
    assert rs.template_for("DC_COMMON", "LOW") is None


def test_system_templates_exist_for_a_new_tenant(store: Store, tid: int) -> None:
    # validate creates the tenant's system templates before it checks the names
    source = (
        "templates: {LOW: Admin, MIDDLE: DBA, HIGH: Owner, HIGHEST: Owner->DBA->Admin}\n"
        "by_ticket_type: {NDDL: {LOW: Owner->DBA}}\n"
    )
    with store.session() as s:
        assert rule_sets.load(s, tid, "all-system", source).version == 1


def test_validate_reports_without_storing(store: Store, tid: int) -> None:
    with store.session() as s:
        assert rule_sets.validate(s, tid, STRICT) == rules.parse(STRICT)
        with pytest.raises(DmsError) as err:
            rule_sets.validate(s, tid, "rules: []\n")
        assert err.value.code == ErrorCode.RULE_SET_INVALID
        assert err.value.message == "line 1: templates: Field required"
        assert s.query(SecurityRuleSet).count() == 0


# ------------------------------------------------------------------ the default


def test_default_always_exists_as_the_built_in(store: Store, tid: int) -> None:
    loaded = current(store, tid, "default")
    assert (loaded.name, loaded.version) == ("default", 0)
    assert loaded.source == rules.default_source()
    assert loaded.rule_set == rules.parse(rules.default_source())
    with store.session() as s:
        assert rule_sets.list_names(s, tid) == []  # built in, not stored


def test_a_loaded_default_overrides_the_built_in(store: Store, tid: int) -> None:
    with store.session() as s:
        assert rule_sets.load(s, tid, "default", RELAXED).version == 1
    loaded = current(store, tid, "default")
    assert (loaded.version, loaded.source, loaded.rule_set.default_risk) == (1, RELAXED, "LOW")
    assert "templates: Field required" in refused(store, tid, "default_risk: MIDDLE\n", "default")
    assert current(store, tid, "default").source == RELAXED
    with store.session() as s:
        other = create_tenant(s, "other").tid
    assert current(store, other, "default").version == 0  # other tenants keep the built-in


# ------------------------------------------------------------------ instances


@pytest.fixture
def instance_id(store: Store, box: SecretBox, tmp_path: Path, tid: int) -> int:
    path = ensure_demo_target(tmp_path / "targets", customers=2, orders_each=1)
    with store.session() as s:
        inst = instances.register_instance(
            s,
            box,
            TargetPolicy("", path.parent),
            tid,
            instances.InstanceSpec(instance_type="sqlite", host=str(path), alias="demo"),
            actor=None,
        )
        return inst.instance_id


def follows(store: Store, instance_id: int) -> tuple[str, int, str | None]:
    with store.session() as s:
        loaded, note = rule_sets.for_instance(s, s.get(Instance, instance_id))
        return loaded.name, loaded.version, note


def set_safe_rule(store: Store, instance_id: int, value: str) -> None:
    with store.session() as s:
        s.get(Instance, instance_id).safe_rule = value


def test_for_instance_without_safe_rule_follows_the_default(store: Store, instance_id: int) -> None:
    assert follows(store, instance_id) == ("default", 0, None)
    for value in ("default", "  ", " default "):
        set_safe_rule(store, instance_id, value)
        assert follows(store, instance_id) == ("default", 0, None)


def test_for_instance_unknown_safe_rule_falls_back_with_a_note(
    store: Store, tid: int, instance_id: int
) -> None:
    set_safe_rule(store, instance_id, "自由操作")
    name, version, note = follows(store, instance_id)
    assert (name, version) == ("default", 0)
    assert note == "Instance demo: no rule set named '自由操作'; the default applies."
    with store.session() as s:
        rule_sets.load(s, tid, "default", RELAXED)
    assert follows(store, instance_id)[:2] == ("default", 1)  # the loaded default


def test_for_instance_follows_its_named_rule_set(store: Store, tid: int, instance_id: int) -> None:
    with store.session() as s:
        rule_sets.load(s, tid, "strict", STRICT)
        rule_sets.load(s, tid, "strict", STRICT)
    set_safe_rule(store, instance_id, " strict ")
    assert follows(store, instance_id) == ("strict", 2, None)


def test_assign(store: Store, tid: int, instance_id: int) -> None:
    with store.session() as s:
        rule_sets.load(s, tid, "strict", STRICT)
        inst = rule_sets.assign(s, tid, instance_id, "strict")
        assert inst.safe_rule == "strict"
    assert follows(store, instance_id) == ("strict", 1, None)
    with store.session() as s:
        rule_sets.assign(s, tid, instance_id, "default")  # the built-in needs no load
    assert follows(store, instance_id) == ("default", 0, None)


def test_assign_refuses_an_unknown_name_and_changes_nothing(
    store: Store, tid: int, instance_id: int
) -> None:
    with store.session() as s:
        rule_sets.load(s, tid, "strict", STRICT)
        rule_sets.assign(s, tid, instance_id, "strict")
    with pytest.raises(DmsError) as err, store.session() as s:
        rule_sets.assign(s, tid, instance_id, "missing")
    assert err.value.code == ErrorCode.RULE_SET_NOT_FOUND
    assert err.value.code.value == "SecurityRuleSetNotFound"
    assert follows(store, instance_id) == ("strict", 1, None)
    with pytest.raises(DmsError) as err, store.session() as s:
        rule_sets.assign(s, tid, instance_id, "")
    assert err.value.code == ErrorCode.INVALID_PARAMETER


def test_assign_refuses_another_tenants_instance_and_rule_set(
    store: Store, tid: int, instance_id: int
) -> None:
    with store.session() as s:
        other = create_tenant(s, "other").tid
        rule_sets.load(s, other, "theirs", RELAXED)
    with pytest.raises(DmsError), store.session() as s:
        rule_sets.assign(s, other, instance_id, "theirs")  # not their instance
    with pytest.raises(DmsError) as err, store.session() as s:
        rule_sets.assign(s, tid, instance_id, "theirs")  # not our rule set
    assert err.value.code == ErrorCode.RULE_SET_NOT_FOUND
    assert follows(store, instance_id) == ("default", 0, None)


def test_in_use_names_the_instances_as_for_instance_does(
    store: Store, tid: int, instance_id: int
) -> None:
    def used() -> list[tuple[str, int, list[int]]]:
        with store.session() as s:
            return [
                (u.name, u.version, [i.instance_id for i in u.instances])
                for u in rule_sets.in_use(s, tid)
            ]

    assert used() == [("default", 0, [instance_id])]
    with store.session() as s:
        rule_sets.load(s, tid, "strict", STRICT)
    set_safe_rule(store, instance_id, "missing")  # names nothing: the default applies
    assert used() == [("default", 0, [instance_id]), ("strict", 1, [])]
    set_safe_rule(store, instance_id, " strict ")
    with store.session() as s:
        rule_sets.load(s, tid, "default", RELAXED)
    assert used() == [("default", 1, []), ("strict", 1, [instance_id])]
