"""The chat lane on its own (docs/contract.md §2.1): the OpenAI completion object, its
usage, and a streamed answer's chunks ending with `[DONE]`, judged without `explain`, so
a gateway that only chats gets a verdict on what it declares."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_sidecar import Evidence
from pytest_sidecar.client import SidecarClient

pytestmark = [pytest.mark.profile("core")]

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def usage_problems(usage: Any) -> list[str]:
    """What breaks OpenAI's usage object: three counts, the total their sum."""
    if not isinstance(usage, dict):
        return [f"usage is {usage!r}, not an object"]
    problems = [f"usage.{key} is {usage.get(key)!r}, not a count" for key in USAGE_KEYS
                if not is_count(usage.get(key))]
    if not problems and usage["total_tokens"] != usage["prompt_tokens"] + \
            usage["completion_tokens"]:
        problems.append(f"usage.total_tokens {usage['total_tokens']} is not prompt_tokens + "
                        f"completion_tokens ({usage['prompt_tokens']} + "
                        f"{usage['completion_tokens']})")
    return problems


def completion_problems(body: Any) -> list[str]:
    """What breaks the OpenAI chat completion object §2.1 names."""
    if not isinstance(body, dict):
        return [f"the body is {type(body).__name__}, not an object"]
    problems = []
    if not isinstance(body.get("id"), str) or not body.get("id"):
        problems.append(f"id is {body.get('id')!r}")
    if body.get("object") != "chat.completion":
        problems.append(f"object is {body.get('object')!r}, not 'chat.completion'")
    if not is_count(body.get("created")):
        problems.append(f"created is {body.get('created')!r}, not epoch seconds")
    if not isinstance(body.get("model"), str):
        problems.append(f"model is {body.get('model')!r}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return [*problems, f"choices is {choices!r}, not a non-empty list"]
    for n, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or choice.get("index") != n:
            problems.append(f"choices[{n}].index is not {n}")
        if not isinstance(message, dict) or message.get("role") != "assistant" or \
                not isinstance(message.get("content"), str):
            problems.append(f"choices[{n}].message is {message!r}, not an assistant message")
        if not isinstance(choice, dict) or not isinstance(choice.get("finish_reason"), str):
            problems.append(f"choices[{n}].finish_reason is missing")
    return problems + usage_problems(body.get("usage"))


@pytest.mark.clause("§2.1/completion")
@pytest.mark.needs("chat")
def test_a_chat_answers_with_an_openai_completion_object(gateway: SidecarClient,
                                                         evidence: Evidence) -> None:
    response = gateway.chat([{"role": "user", "content": "Name three colours."}])
    assert response.status_code == 200, (
        f"§2.1: a valid chat got {response.status_code}: {response.text[:200]}")
    body = response.json()
    problems = completion_problems(body)
    assert not problems, f"§2.1: not an OpenAI chat completion: {'; '.join(problems)}"
    assert "explanation_metadata" not in body, (
        "§2.1: a chat without x-explain-mode carries explanation_metadata (only a chat "
        "that opened a trace has it)")
    evidence.record(id=body["id"], model=body["model"], choices=len(body["choices"]),
                    finish_reason=body["choices"][0]["finish_reason"], usage=body["usage"])


def streamed_chunks(response_lines: list[str]) -> tuple[list[Any], bool, list[str]]:
    """(the JSON chunks, whether `[DONE]` ended the stream, problems) of an SSE body; any
    `data:` field counts, with or without the space SSE allows after the colon."""
    from pytest_sidecar.client import SseEvent, parse_sse

    chunks: list[Any] = []
    done, problems = False, []
    for item in parse_sse(iter(response_lines)):
        if not isinstance(item, SseEvent):
            continue
        if done:
            problems.append(f"data after [DONE]: {item.data[:80]!r}")
        elif item.data == "[DONE]":
            done = True
        else:
            try:
                chunks.append(json.loads(item.data))
            except ValueError:
                problems.append(f"a data field is not JSON: {item.data[:80]!r}")
    return chunks, done, problems


@pytest.mark.clause("§2.1/stream")
@pytest.mark.needs("chat_stream")
def test_a_streamed_chat_sends_openai_chunks_then_done(gateway: SidecarClient,
                                                       evidence: Evidence) -> None:
    request = gateway.chat_request([{"role": "user", "content": "Count to five."}],
                                   stream=True)
    with gateway.http.stream(**request) as response:
        lines = [line for line in response.iter_lines()]
    assert response.status_code == 200, f"§2.1: a streamed chat got {response.status_code}"
    kind = response.headers.get("content-type", "")
    assert kind.startswith("text/event-stream"), (
        f"§2.1: a streamed chat answered {kind!r}, not text/event-stream")
    chunks, done, problems = streamed_chunks(lines)
    assert not problems, f"§2.1: {'; '.join(problems)}"
    assert chunks, "§2.1: the stream carried no chunk before its end"
    assert done, "§2.1: the stream did not end with data: [DONE]"
    wrong = [c for c in chunks if not isinstance(c, dict)
             or c.get("object") != "chat.completion.chunk"
             or not isinstance(c.get("choices"), list)]
    assert not wrong, (
        f"§2.1: {len(wrong)} of {len(chunks)} chunks are not chat.completion.chunk objects "
        f"with choices, e.g. {str(wrong[0])[:160]}")
    deltas = [choice for c in chunks for choice in c["choices"]]
    text = "".join(str((d.get("delta") or {}).get("content") or "") for d in deltas)
    assert text, "§2.1: no chunk's delta carried content"
    ended = [d["finish_reason"] for d in deltas if d.get("finish_reason")]
    assert ended, "§2.1: no chunk carried a finish_reason (OpenAI's last chunk says why)"
    ids = {c.get("id") for c in chunks}
    assert len(ids) == 1 and None not in ids, (
        f"§2.1: the chunks of one answer carry {len(ids)} different ids")
    evidence.record(chunks=len(chunks), characters=len(text), finish_reason=ended[-1],
                    done=done)
