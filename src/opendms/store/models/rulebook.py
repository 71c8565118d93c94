"""What a tenant configures for approvals: nodes, templates and security rule sets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opendms.store.models.base import Base, BigId, utcnow


class WorkflowNode(Base):
    """An approval step: a system node resolved when a ticket reaches it (Admin, DBA,
    DBA Roles, Owner), or a USER_LIST node with its own approvers."""

    __tablename__ = "workflow_nodes"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_workflow_nodes_name"),)

    node_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    node_type: Mapped[str] = mapped_column(String(16))  # SYS, USER_LIST
    system_kind: Mapped[str | None] = mapped_column(String(16))  # ADMIN, DBA, DBA_ROLES, OWNER
    comment: Mapped[str] = mapped_column(Text, default="")
    create_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WorkflowNodeUser(Base):
    __tablename__ = "workflow_node_users"

    node_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_nodes.node_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )


class WorkflowTemplate(Base):
    __tablename__ = "workflow_templates"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_workflow_templates_name"),)

    template_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    is_system: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    create_user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WorkflowTemplateNode(Base):
    """The nodes of a template, in order (position 1 first)."""

    __tablename__ = "workflow_template_nodes"

    template_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_templates.template_id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("workflow_nodes.node_id", ondelete="CASCADE")
    )


class SecurityRuleSet(Base):
    """A tenant's security rule set (an instance's ``SafeRule`` names one), kept as the YAML or
    JSON document it was loaded from; ``version`` counts loads under the same name."""

    __tablename__ = "security_rule_sets"
    __table_args__ = (UniqueConstraint("tid", "name", name="uq_security_rule_sets_name"),)

    rule_set_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tid: Mapped[int] = mapped_column(BigId, ForeignKey("tenants.tid", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
