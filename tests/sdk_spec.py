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


def snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z][a-z])|(?<=[a-z0-9])(?=[A-Z])", "_", action).lower()


@dataclass(frozen=True)
class SdkField:
    wire: str
    attr: str
    location: str  # "query" or "body"
    annotation: str


@cache
def request_fields(action: str) -> dict[str, SdkField]:
    """Wire name -> field, for the request the SDK builds for ``action``."""
    source = inspect.getsource(getattr(sdk_client.Client, f"{snake(action)}_with_options"))
    placed = dict((wire, loc) for loc, wire in re.findall(r"(query|body)\['(\w+)'\]", source))
    shrink_attrs = {
        a: w for a, w in re.findall(r"request\.(\w+)\s*\)?:\s*\n\s*\w+\['(\w+)'\]", source)
    }
    del shrink_attrs
    req_cls = getattr(sdk_models, f"{action}Request")
    hints = inspect.signature(req_cls.__init__).parameters
    probe = req_cls()
    out: dict[str, SdkField] = {}
    for attr, param in hints.items():
        if attr == "self":
            continue
        probe_map = type(probe)(**{attr: _dummy(param.annotation)}).to_map()
        (wire,) = probe_map.keys()
        out[wire] = SdkField(wire, attr, placed.get(wire, "query"), str(param.annotation))
    return out


def _dummy(annotation: typing.Any) -> typing.Any:
    text = str(annotation)
    if "int" in text:
        return 1
    if "bool" in text:
        return True
    if "List" in text or "list" in text:
        return []
    if "Dict" in text or "dict" in text:
        return {}
    return "x"


def response_model(action: str) -> type:
    return getattr(sdk_models, f"{action}ResponseBody")


def roundtrip(action: str, body: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """What the SDK keeps of ``body``: parse it into the response model and back."""
    model = response_model(action)()
    return typing.cast(dict[str, typing.Any], model.from_map(body).to_map())
