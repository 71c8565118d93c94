"""What the catalog's actions share: field types and how owners appear on the wire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from opendms.gateway.table import Payload
from opendms.gateway.wire import Int
from opendms.store.models import DbColumn, User

Text = Annotated[str, Field(max_length=256)]
HostText = Annotated[str, Field(min_length=1, max_length=1024)]
PortNumber = Annotated[Int, Field(ge=0, le=65535)]
EnvType = Literal["product", "dev", "pre", "test", "sit", "uat", "pet", "stag"]
PageNumber = Annotated[Int, Field(ge=1)]
PageSize = Annotated[Int, Field(ge=1, le=1000)]


def owners_payload(users: Sequence[User]) -> Payload:
    return {
        "OwnerIdList": {"OwnerIds": [str(u.user_id) for u in users]},
        "OwnerNameList": {"OwnerNames": [u.nick_name for u in users]},
    }


def column_payload(c: DbColumn) -> Payload:
    """What every column listing says of a column (ListColumns, GetMetaTableDetailInfo,
    GetMetaTableColumn); each adds what its own SDK model has beyond it."""
    out: Payload = {
        "ColumnId": str(c.column_id),
        "ColumnName": c.name,
        "ColumnType": c.column_type,
        "DataLength": c.data_length,
        "DataPrecision": c.data_precision,
        "DataScale": c.data_scale,
        "Nullable": c.nullable,
        "AutoIncrement": c.auto_increment,
        "Description": c.description,
    }
    return {k: v for k, v in out.items() if v is not None}
