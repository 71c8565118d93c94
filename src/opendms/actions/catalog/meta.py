"""A table's columns and indexes by its GUID (GetMetaTableDetailInfo, GetMetaTableColumn):
what Alibaba's DMS MCP server reads to show an agent a table (dms-api.md, the MCP section)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from opendms.actions.catalog.fields import column_payload
from opendms.catalog import guids, queries, sensitive
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import TenantScoped
from opendms.store.models import DbIndex

TableGuid = Annotated[str, Field(min_length=1, max_length=1024)]

# The catalog's index kinds as DMS spells IndexType here.
INDEX_TYPES = {"PRIMARY": "Primary", "UNIQUE": "Unique", "NORMAL": "Normal"}


class TableGuidRequest(TenantScoped):
    table_guid: TableGuid


def _index(i: DbIndex) -> Payload:
    return {
        "IndexId": str(i.index_id),
        "IndexName": i.name,
        "IndexType": INDEX_TYPES.get(i.index_type, i.index_type),
        "IndexColumns": list(i.columns),
        "Unique": i.index_type in ("PRIMARY", "UNIQUE"),
    }


def _primary_key(indexes: Sequence[DbIndex]) -> set[str]:
    return {c for i in indexes if i.index_type == "PRIMARY" for c in i.columns}


def get_meta_table_detail_info(ctx: Context, req: TableGuidRequest) -> Payload:
    table, _db = guids.find_table(ctx.session, ctx.caller.tid, req.table_guid)
    columns = queries.list_columns(ctx.session, ctx.caller.tid, table.table_id)
    indexes = queries.list_indexes(ctx.session, ctx.caller.tid, table.table_id)
    return {
        "DetailInfo": {
            # the SDK types Position as a string here, and as an integer in GetMetaTableColumn
            "ColumnList": [{**column_payload(c), "Position": str(c.position)} for c in columns],
            "IndexList": [_index(i) for i in indexes],
        }
    }


def get_meta_table_column(ctx: Context, req: TableGuidRequest) -> Payload:
    table, db = guids.find_table(ctx.session, ctx.caller.tid, req.table_guid)
    columns = queries.list_columns(ctx.session, ctx.caller.tid, table.table_id)
    primary = _primary_key(queries.list_indexes(ctx.session, ctx.caller.tid, table.table_id))
    masked = sensitive.masks_of(ctx.session, db.db_id)
    return {
        "ColumnList": [
            {
                **column_payload(c),
                "Position": c.position,
                "PrimaryKey": "true" if c.name in primary else "false",
                # DMS's levels: INNER (not sensitive), SENSITIVE, CONFIDENTIAL
                "SecurityLevel": "SENSITIVE"
                if (table.name.lower(), c.name.lower()) in masked
                else "INNER",
            }
            for c in columns
        ]
    }


ACTIONS = (
    Action(
        "GetMetaTableDetailInfo",
        TableGuidRequest,
        get_meta_table_detail_info,
        Access.GET,
        "A table's columns and indexes, by the TableGuid ListTables gives.",
    ),
    Action(
        "GetMetaTableColumn",
        TableGuidRequest,
        get_meta_table_column,
        Access.GET,
        "A table's columns with their key and security level, by TableGuid.",
    ),
)
