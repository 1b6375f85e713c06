"""The emulator rejects what the real APIs reject (their 400 bodies) and honours max_tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from rxstream import operators as rso
from rxstream.providers import PROVIDER_NAMES, get_spec
from rxstream.testing import ProviderEmulator, ResponseScript

USER = [{"role": "user", "content": "hi"}]
CONVERSE_USER = [{"role": "user", "content": [{"text": "hi"}]}]
INVOKE_PATH = "/model/m/invoke-with-response-stream"


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


def post(emu: ProviderEmulator, path: str, body: dict[str, Any]) -> httpx2.Response:
    with httpx2.Client() as http:
        return http.post(emu.url + path, json=body)


ANTHROPIC_CASES = [
    ({"max_tokens": 5, "messages": USER}, "model: Field required"),
    ({"model": "m", "messages": USER}, "max_tokens: Field required"),
    ({"model": "m", "max_tokens": "5", "messages": USER}, "max_tokens: Input should be a valid integer"),
    (
        {"model": "m", "max_tokens": 0, "messages": USER},
        "max_tokens: Input should be greater than or equal to 1",
    ),
    ({"model": "m", "max_tokens": 5}, "messages: Field required"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages: at least one message is required"),
    ({"model": "m", "max_tokens": 5, "messages": "hi"}, "messages: Input should be a valid list"),
    (
        {"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
        "messages.0.role: Input should be 'user' or 'assistant'",
    ),
]


@pytest.mark.parametrize(("body", "message"), ANTHROPIC_CASES)
def test_anthropic_rejects_like_the_api(emu: ProviderEmulator, body: dict[str, Any], message: str) -> None:
    reply = post(emu, "/v1/messages", {**body, "stream": True})
    assert reply.status_code == 400
    payload = reply.json()
    assert payload["type"] == "error" and payload["request_id"] == reply.headers["request-id"]
    assert payload["error"] == {"type": "invalid_request_error", "message": message}


OPENAI_CASES = [
    ("/v1/chat/completions", {"messages": USER}, None, None, "you must provide a model parameter"),
    (
        "/v1/chat/completions",
        {"model": "m"},
        "messages",
        "missing_required_parameter",
        "Missing required parameter",
    ),
    ("/v1/chat/completions", {"model": "m", "messages": []}, "messages", "empty_array", "empty array"),
    (
        "/v1/chat/completions",
        {"model": "m", "messages": "hi"},
        "messages",
        "invalid_type",
        "but got a string",
    ),
    (
        "/v1/chat/completions",
        {"model": "m", "messages": USER, "max_completion_tokens": 0},
        "max_completion_tokens",
        "integer_below_min_value",
        "Expected a value >= 1, but got 0 instead.",
    ),
    (
        "/v1/chat/completions",
        {"model": "m", "messages": USER, "max_tokens": "many"},
        "max_tokens",
        "invalid_type",
        "expected an integer, but got a string instead.",
    ),
    (
        "/v1/responses",
        {"input": "hi"},
        "model",
        "missing_required_parameter",
        "Missing required parameter: 'model'.",
    ),
    ("/v1/responses", {"model": "m", "input": []}, "input", "empty_array", "empty array"),
    ("/v1/responses", {"model": "m", "input": 3}, "input", "invalid_type", "but got an integer instead."),
    (
        "/v1/responses",
        {"model": "m", "input": "hi", "max_output_tokens": 5},
        "max_output_tokens",
        "integer_below_min_value",
        "Expected a value >= 16, but got 5 instead.",
    ),
]


@pytest.mark.parametrize(("path", "body", "param", "code", "message"), OPENAI_CASES)
def test_openai_rejects_like_the_api(
    emu: ProviderEmulator, path: str, body: dict[str, Any], param: str | None, code: str | None, message: str
) -> None:
    reply = post(emu, path, {**body, "stream": True})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert message in error["message"]
    assert reply.headers["x-request-id"].startswith("req_")


BEDROCK_CASES = [
    ("/model/m/converse-stream", {"messages": []}, "A conversation must start with a user message."),
    (
        "/model/m/converse-stream",
        {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]},
        "A conversation must start with a user message.",
    ),
    (INVOKE_PATH, {"max_tokens": 5, "messages": USER}, "#: required key [anthropic_version] not found"),
    (INVOKE_PATH, {"anthropic_version": "bedrock-2023-05-31", "messages": USER}, "required key [max_tokens]"),
    (
        INVOKE_PATH,
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": "5", "messages": USER},
        "#/max_tokens: expected type: Integer, found: String",
    ),
    (
        INVOKE_PATH,
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []},
        "#/messages: expected minimum item count: 1, found: 0",
    ),
]


@pytest.mark.parametrize(("path", "body", "message"), BEDROCK_CASES)
def test_bedrock_rejects_like_the_api(
    emu: ProviderEmulator, path: str, body: dict[str, Any], message: str
) -> None:
    reply = post(emu, path, body)
    assert reply.status_code == 400
    assert reply.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert message in reply.json()["message"]


def test_a_rejected_request_leaves_the_queued_script_for_the_next(emu: ProviderEmulator) -> None:
    emu.enqueue(ResponseScript(text="kept"))
    assert post(emu, "/v1/messages", {"model": "m", "messages": USER, "stream": True}).status_code == 400
    ok = post(emu, "/v1/messages", {"model": "m", "max_tokens": 50, "messages": USER, "stream": True})
    assert ok.status_code == 200 and '"text":"kept"' in ok.text


def test_validation_reaches_the_sdk_as_its_bad_request_error(emu: ProviderEmulator) -> None:
    import anthropic

    with emu.client("anthropic") as client, pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="m", max_tokens=0, messages=USER, stream=True)
    assert info.value.status_code == 400
    assert info.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: Input should be greater than or equal to 1",
        },
        "request_id": info.value.request_id,
    }


WORDS = " ".join(f"w{i}" for i in range(40))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_max_tokens_cuts_the_answer_and_says_so(emu: ProviderEmulator, provider: str) -> None:
    spec = get_spec(provider)
    limit = 16  # the smallest limit every API accepts (Responses: max_output_tokens >= 16)
    emu.enqueue(ResponseScript(text=WORDS, output_tokens=40))
    client = emu.client(provider)
    try:
        response = spec.stream(client, spec.request("x", model="m", max_tokens=limit)).pipe(rso.final()).run()
    finally:
        client.close()
    assert response.text == " ".join(f"w{i}" for i in range(limit))
    assert response.stop_reason == "max_tokens"
    assert response.usage.output_tokens == limit


def test_an_answer_within_max_tokens_is_untouched(emu: ProviderEmulator) -> None:
    emu.enqueue(ResponseScript(text=WORDS, output_tokens=40))
    reply = post(emu, "/v1/messages", {"model": "m", "max_tokens": 40, "messages": USER, "stream": True})
    assert '"stop_reason":"end_turn"' in reply.text and "w39" in reply.text
