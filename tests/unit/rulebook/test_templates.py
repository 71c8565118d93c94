from __future__ import annotations

import pytest

from opendms.errors import DmsError
from opendms.identity import service as identity
from opendms.rulebook import templates
from opendms.store.db import Store


def test_system_nodes_and_templates_exist_once_per_tenant(store: Store) -> None:
    with store.session() as s:
        a = identity.create_tenant(s, "a").tid
        b = identity.create_tenant(s, "b").tid
        templates.ensure_system(s, a)
        templates.ensure_system(s, a)  # idempotent
        views = {v.template.name: v for v in templates.list_templates(s, a)}
        assert set(views) == set(templates.SYSTEM_TEMPLATES)
        chain = [n.name for _, n in views["Owner->DBA->Admin"].nodes]
        assert chain == ["Owner", "DBA", "Admin"]
        assert [p for p, _ in views["Owner->DBA"].nodes] == [1, 2]
        assert all(v.template.is_system for v in views.values())
        assert {n.name for n in templates.list_nodes(s, a)} == set(templates.SYSTEM_NODES)
        b_nodes = {n.node_id for n in templates.list_nodes(s, b)}
        a_nodes = {n.node_id for n in templates.list_nodes(s, a)}
        assert not a_nodes & b_nodes  # each tenant has its own
        assert [v.template.name for v in templates.list_templates(s, a, "owner->")] == [
            "Owner->DBA",
            "Owner->DBA->Admin",
        ]
        # SearchName is a DMS pattern (store.search)
        assert len(templates.list_templates(s, a, "%")) == len(templates.SYSTEM_TEMPLATES)
        assert [v.template.name for v in templates.list_templates(s, a, "r-_d")] == [
            "Owner->DBA",
            "Owner->DBA->Admin",
        ]
        assert templates.list_templates(s, a, "\\%") == []
        assert {n.name for n in templates.list_nodes(s, a, "d_a")} == {"DBA", "DBA Roles"}
        assert len(templates.list_nodes(s, a, "%")) == len(templates.SYSTEM_NODES)


def test_custom_nodes_and_templates(store: Store) -> None:
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        alice = identity.register_user(s, None, tid, "1")
        bob = identity.register_user(s, None, tid, "2")
        node = templates.create_node(s, tid, "Release managers", [alice.user_id, bob.user_id])
        assert templates.node_users(s, [node.node_id]) == {
            node.node_id: [alice.user_id, bob.user_id]
        }
        made = templates.create_template(s, tid, "RM then DBA", ["Release managers", "DBA"])
        view = next(
            v
            for v in templates.list_templates(s, tid)
            if v.template.template_id == made.template_id
        )
        assert [(p, n.name) for p, n in view.nodes] == [(1, "Release managers"), (2, "DBA")]
        assert not view.template.is_system
        for bad in (
            lambda: templates.create_node(s, tid, "Release managers", [alice.user_id]),
            lambda: templates.create_node(s, tid, "Empty", []),
            lambda: templates.create_node(s, tid, "Ghost", [999]),
            lambda: templates.create_template(s, tid, "Broken", ["Nobody"]),
            lambda: templates.create_template(s, tid, "RM then DBA", ["DBA"]),
            lambda: templates.create_template(s, tid, "Nothing", []),
        ):
            with pytest.raises(DmsError):
                bad()
