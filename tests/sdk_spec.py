"""What the official SDK sends and parses, read from the installed package itself.

Tests compare our action table against this, so a field we misspell or put in the wrong
place fails a test instead of a customer's script.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from functools import cache

from alibabacloud_dms_enterprise20181101 import client as sdk_client
from alibabacloud_dms_enterprise20181101 import models as sdk_models

# ``request.param_shrink = Utils.array_to_string_with_specified_style(tmp_req.param, 'Param',
# 'json')``: a list or object parameter the SDK sends as one string.
_SHRINK = re.compile(
    r"request\.(\w+)_shrink = Utils\.array_to_string_with_specified_style\("
    r"tmp_req\.\w+, '\w+', '(\w+)'\)"
)
# ``query['Uid'] = request.uid`` / ``body['Param'] = request.param_shrink``
_PLACED = re.compile(r"\b(query|body)\['(\w+)'\] = request\.(\w+)")


def snake(action: str) -> str:
    """The SDK's method stem: ``GetUser`` -> ``get_user``, ``ListSLARules`` -> ``list_slarules``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", action).lower()


def method_name(action: str, *, options: bool = True) -> str:
    """The SDK client method that sends ``action`` (with explicit runtime options, or not):
    the SDK snake-cases the whole name, so ``ListDataCorrectPreCheckSQL`` becomes
    ``list_data_correct_pre_check_sqlwith_options``."""
    return snake(f"{action}WithOptions" if options else action)


@dataclass(frozen=True)
class SdkField:
    wire: str
    attr: str  # attribute of the SDK's ``<Action>Request`` model
    location: str  # "query" or "body"
    annotation: str  # as written in the SDK's request model, e.g. "int", "List[int]"
    style: str | None = None  # "json" / "simple": a list or object sent as one string


@cache
def _source(action: str) -> str:
    source = inspect.getsource(getattr(sdk_client.Client, method_name(action)))
    if f"action = '{action}'" not in source:
        raise LookupError(f"{method_name(action)} does not send Action={action}")
    return source


@cache
def request_fields(action: str) -> dict[str, SdkField]:
    """Wire name -> field, for every parameter the SDK's client puts on the wire for
    ``action`` (an attribute of the request model that the client never sends is left out)."""
    source = _source(action)
    styles = dict(_SHRINK.findall(source))
    params = inspect.signature(getattr(sdk_models, f"{action}Request").__init__).parameters
    out: dict[str, SdkField] = {}
    for location, wire, sent in _PLACED.findall(source):
        attr = sent.removesuffix("_shrink") if sent.endswith("_shrink") else sent
        style = styles.get(attr) if sent != attr else None
        out[wire] = SdkField(wire, attr, location, str(params[attr].annotation), style)
    return out


def response_model(action: str) -> type:
    return getattr(sdk_models, f"{action}ResponseBody")


def roundtrip(action: str, body: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """What the SDK keeps of ``body``: parse it into the response model and back.

    The SDK's models write every list of objects back, as ``[]`` when the body had none
    (``TenantList`` of a failed ListUserTenants); those invented lists are left out, so the
    result equals ``body`` exactly when the SDK keeps all of it, unchanged."""
    model = response_model(action)()
    kept = _drop_invented_lists(model.from_map(body).to_map(), body)
    return typing.cast(dict[str, typing.Any], kept)


def _drop_invented_lists(out: typing.Any, sent: typing.Any) -> typing.Any:
    if isinstance(out, dict) and isinstance(sent, dict):
        return {
            k: _drop_invented_lists(v, sent[k]) if k in sent else v
            for k, v in out.items()
            if k in sent or v != []
        }
    if isinstance(out, list) and isinstance(sent, list) and len(out) == len(sent):
        return [_drop_invented_lists(o, s) for o, s in zip(out, sent, strict=True)]
    return out
