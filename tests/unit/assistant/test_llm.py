"""The chat-completions client against a local server that speaks the protocol: what it
sends, and every way an endpoint can fail as a DMS error that never shows the key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opendms.assistant import llm
from opendms.assistant.llm import Message
from opendms.errors import DmsError, ErrorCode
from opendms.means import LlmEndpoint
from tests.fake_llm import FakeLlm, fake_llm

KEY = "sk-very-secret-key"
ASK = [Message("system", "You write SQL."), Message("user", "How many orders?")]


@pytest.fixture
def fake() -> Iterator[FakeLlm]:
    with fake_llm() as f:
        yield f


def failure(endpoint: LlmEndpoint, code: ErrorCode = ErrorCode.LLM_FAILED) -> str:
    with pytest.raises(DmsError) as caught:
        llm.chat(endpoint, endpoint.model, ASK)
    assert caught.value.code == code
    assert KEY not in caught.value.message
    return caught.value.message


def test_it_posts_the_model_and_messages_with_the_key_and_returns_the_text(fake: FakeLlm) -> None:
    fake.reply = "SELECT count(*) FROM orders"
    assert llm.chat(fake.endpoint(KEY), "test-model", ASK) == "SELECT count(*) FROM orders"
    got = fake.last
    assert got.path == "/v1/chat/completions"
    assert got.headers["authorization"] == f"Bearer {KEY}"
    assert got.body["model"] == "test-model" and got.body["stream"] is False
    assert got.messages == [
        {"role": "system", "content": "You write SQL."},
        {"role": "user", "content": "How many orders?"},
    ]


def test_without_a_key_no_authorization_header_is_sent(fake: FakeLlm) -> None:
    llm.chat(fake.endpoint(""), "test-model", ASK)
    assert "authorization" not in fake.last.headers


def test_an_http_error_is_a_dms_error_naming_the_status(fake: FakeLlm) -> None:
    fake.status = 500
    assert "HTTP 500" in failure(fake.endpoint(KEY))


def test_a_redirect_is_not_followed(fake: FakeLlm) -> None:
    with fake_llm() as elsewhere:
        fake.status, fake.location = 307, f"{elsewhere.base_url}/chat/completions"
        assert "redirects are not followed" in failure(fake.endpoint(KEY))
        assert elsewhere.received == []


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"choices": []}', b'{"choices": [{"message": {"content": 7}}]}', b"[]"],
)
def test_an_answer_that_is_no_chat_completion_is_refused(fake: FakeLlm, raw: bytes) -> None:
    fake.raw = raw
    message = failure(fake.endpoint(KEY))
    assert "not a chat completion" in message or "no text" in message


def test_an_oversized_answer_is_cut_off(fake: FakeLlm) -> None:
    fake.raw = b"x" * (llm.MAX_ANSWER_BYTES + 10)
    assert "more than" in failure(fake.endpoint(KEY))


def test_a_slow_endpoint_fails_after_the_timeout(fake: FakeLlm) -> None:
    fake.delay = 3
    message = failure(fake.endpoint(KEY, timeout_seconds=0.3))
    assert "did not answer within 0.3 s" in message


def test_an_unreachable_endpoint_is_a_dms_error() -> None:
    with fake_llm() as gone:
        url = gone.base_url
    message = failure(LlmEndpoint(url, "m", KEY))
    assert "cannot be reached" in message and url in message


def test_no_endpoint_says_how_to_configure_one() -> None:
    for endpoint in (None, LlmEndpoint("http://127.0.0.1:9/v1", "")):
        with pytest.raises(DmsError) as caught:
            llm.configured(endpoint)
        assert caught.value.code == ErrorCode.LLM_NOT_CONFIGURED
        assert "OPENDMS_LLM_BASE_URL" in caught.value.message
        assert "OPENDMS_LLM_MODEL" in caught.value.message


def test_a_request_picks_only_the_models_the_operator_offers() -> None:
    endpoint = LlmEndpoint("http://x/v1", "qwen-plus", models=("qwen-max",))
    assert llm.pick_model(endpoint, None) == "qwen-plus"
    assert llm.pick_model(endpoint, "qwen-max") == "qwen-max"
    assert llm.pick_model(None, None) is None
    for other in (endpoint, None):
        with pytest.raises(DmsError) as caught:
            llm.pick_model(other, "gpt-4o")
        assert caught.value.code == ErrorCode.INVALID_PARAMETER


def test_the_key_is_not_in_the_endpoints_repr() -> None:
    assert KEY not in repr(LlmEndpoint("http://x/v1", "m", KEY))


def test_settings_build_the_endpoint_and_refuse_urls_that_are_no_endpoint() -> None:
    from pydantic import ValidationError

    from opendms.config import Settings

    settings = Settings(
        llm_base_url=" https://llm.example.com/v1/ ",
        llm_api_key=KEY,
        llm_model="qwen-plus",
        llm_models="qwen-max, qwen-turbo",
    )
    assert KEY not in repr(settings)
    assert LlmEndpoint.from_settings(settings) == LlmEndpoint(
        "https://llm.example.com/v1", "qwen-plus", KEY, ("qwen-max", "qwen-turbo"), 60.0
    )
    assert LlmEndpoint.from_settings(Settings()) is None
    for bad in ("ftp://llm.example.com", "https://user:pw@llm.example.com/v1", "https://h/v1?x=1"):
        with pytest.raises(ValidationError):
            Settings(llm_base_url=bad)
