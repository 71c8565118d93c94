"""Asking the configured language model: one OpenAI-compatible chat-completions request.

The endpoint is the operator's (``OPENDMS_LLM_*``), so no host list applies; but an answer
is held to a deadline for the whole exchange, a size, and the protocol's shape, redirects are
not followed (a key must not travel to another host), and every failure is a
``LlmRequestFailed`` that names the endpoint, never its key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from opendms.errors import DmsError, ErrorCode
from opendms.means import LlmEndpoint

MAX_ANSWER_BYTES = 1024 * 1024
USER_AGENT = "OpenDMS-Assistant/1"


@dataclass(frozen=True)
class Message:
    role: str  # system, user
    content: str


def configured(endpoint: LlmEndpoint | None) -> LlmEndpoint:
    """The endpoint, or the error that says how to configure one."""
    if endpoint is None or not endpoint.model:
        missing = "OPENDMS_LLM_MODEL" if endpoint is not None else "OPENDMS_LLM_BASE_URL"
        raise DmsError(
            ErrorCode.LLM_NOT_CONFIGURED,
            f"No language model is configured ({missing} is not set): set OPENDMS_LLM_BASE_URL "
            "to an OpenAI-compatible endpoint (e.g. https://host/v1), OPENDMS_LLM_MODEL to the "
            "model to ask and, if the endpoint needs one, OPENDMS_LLM_API_KEY; then restart "
            "opendms serve.",
        )
    return endpoint


def pick_model(endpoint: LlmEndpoint | None, requested: str | None) -> str | None:
    """The model a request asks for: the configured one, or one of those the operator lets a
    request pick (``OPENDMS_LLM_MODELS``). None when no model is configured."""
    wanted = (requested or "").strip()
    if endpoint is None or not endpoint.model:
        if wanted:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER,
                f"Model {wanted[:64]!r}: this server has no language model configured "
                "(OPENDMS_LLM_BASE_URL, OPENDMS_LLM_MODEL); leave Model out.",
            )
        return None
    if not wanted or wanted == endpoint.model or wanted in endpoint.models:
        return wanted or endpoint.model
    allowed = ", ".join(dict.fromkeys((endpoint.model, *endpoint.models)))
    raise DmsError(
        ErrorCode.INVALID_PARAMETER,
        f"Model {wanted[:64]!r} is not offered by this server; it offers {allowed} "
        "(OPENDMS_LLM_MODEL, OPENDMS_LLM_MODELS).",
    )


def _failed(endpoint: LlmEndpoint, why: str) -> DmsError:
    return DmsError(
        ErrorCode.LLM_FAILED, f"The language model at {endpoint.base_url} {why}; ask again later."
    )


def _content(endpoint: LlmEndpoint, raw: bytes) -> str:
    try:
        answer = json.loads(raw)
        content = answer["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _failed(endpoint, "answered something that is not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise _failed(endpoint, "answered no text")
    return content


def chat(endpoint: LlmEndpoint, model: str, messages: Sequence[Message]) -> str:
    """The model's answer to ``messages``: the first choice's text."""
    body = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": 0,
        "stream": False,
    }
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    wait = endpoint.timeout_seconds
    deadline = time.monotonic() + wait
    late = f"did not answer within {wait:g} s (OPENDMS_LLM_TIMEOUT_SECONDS)"
    try:
        with (
            httpx.Client(timeout=wait, follow_redirects=False) as client,
            client.stream(
                "POST", f"{endpoint.base_url}/chat/completions", json=body, headers=headers
            ) as response,
        ):
            if not response.is_success:
                moved = " (redirects are not followed)" if response.is_redirect else ""
                raise _failed(endpoint, f"answered HTTP {response.status_code}{moved}")
            raw = bytearray()
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) > MAX_ANSWER_BYTES:
                    raise _failed(endpoint, f"answered more than {MAX_ANSWER_BYTES:,} bytes")
                if time.monotonic() > deadline:
                    raise _failed(endpoint, late)
    except httpx.TimeoutException:
        raise _failed(endpoint, late) from None
    except httpx.HTTPError as exc:
        raise _failed(endpoint, f"cannot be reached ({type(exc).__name__})") from None
    return _content(endpoint, bytes(raw))
