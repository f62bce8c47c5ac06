"""OpenAI compatibility, judged by OpenAI's own SDK (docs/contract.md §2.12).

Every answer is checked the way the `openai` package reads it: the raw JSON validated
against the SDK's pydantic types (the SDK itself builds its objects without validating,
so a missing field would otherwise pass unnoticed), refusals caught as the SDK's error
classes. The core needs only `chat` (`chat_stream` for streams); each extended feature
(`models`, `n`, `stop`, `content_parts`, `include_usage`, `seed`) is its own capability,
so a gateway without it is unsupported for that feature, never failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai import OpenAI  # the dev extra; without it the specs skip TOOL_MISSING

import asyncio
import time
from typing import Any

import pytest

from pytest_sidecar import Evidence
from pytest_sidecar.fixtures.openai_sdk import OpenAIFactory, api_key
from pytest_sidecar.fixtures.throttle import Throttle
from pytest_sidecar.outcomes import insufficient_data
from pytest_sidecar.target import Target

pytestmark = [pytest.mark.profile("openai")]

# An answer no model finishes in three tokens, so max_tokens=3 cuts it.
LONG_PROMPT = "Write a long story about a lighthouse keeper, in at least ten sentences."


def types() -> Any:
    """The SDK's chat types module (the fixture has already skipped if it is missing)."""
    from openai.types import chat

    return chat


def validated(kind: Any, raw: Any, what: str) -> Any:
    """`raw` validated as the SDK type `kind`; a failure names the fields."""
    from pydantic import ValidationError

    try:
        return kind.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                           for e in exc.errors()[:5])
        pytest.fail(f"§2.12: {what} does not parse into the SDK's {kind.__name__}: {fields}",
                    pytrace=False)


def create(client: OpenAI, target: Target, **params: Any) -> tuple[Any, Any]:
    """(the parsed completion, its raw JSON) of one chat through the SDK."""
    params.setdefault("messages", [{"role": "user", "content": "Name three colours."}])
    raw = client.chat.completions.with_raw_response.create(model=target.model, **params)
    body = raw.http_response.json()
    return validated(types().ChatCompletion, body, "the completion"), body


def stream(client: OpenAI, target: Target, **params: Any) -> list[Any]:
    """The chunks of one streamed chat through the SDK, each validated."""
    params.setdefault("messages", [{"role": "user", "content": "Count to five."}])
    chunks: list[Any] = []
    with client.chat.completions.create(model=target.model, stream=True, **params) as events:
        for chunk in events:
            chunks.append(validated(types().ChatCompletionChunk, chunk.to_dict(),
                                    f"chunk {len(chunks)}"))
    assert chunks, "§2.12: the stream carried no chunk"
    return chunks


def text_of(chunks: list[Any], index: int = 0) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices
                   if c.index == index)


def finish_of(chunks: list[Any], index: int = 0) -> str | None:
    ended = [c.finish_reason for chunk in chunks for c in chunk.choices
             if c.index == index and c.finish_reason]
    return ended[-1] if ended else None


# -- core ------------------------------------------------------------------------------

@pytest.mark.clause("§2.12/sdk-types")
@pytest.mark.needs("chat")
def test_a_chat_parses_into_the_sdks_completion(openai_client: OpenAI, sidecar_target: Target,
                                                evidence: Evidence) -> None:
    completion, _ = create(openai_client, sidecar_target)
    assert completion.choices and completion.choices[0].message.content, (
        "§2.12: the completion carries no answer text")
    evidence.record(id=completion.id, model=completion.model,
                    finish_reason=completion.choices[0].finish_reason,
                    usage=completion.usage.to_dict() if completion.usage else None)


@pytest.mark.clause("§2.12/sdk-types")
@pytest.mark.needs("chat")
def test_an_async_client_gets_twenty_answers_at_once(openai_factory: OpenAIFactory,
                                                    sidecar_target: Target,
                                                    evidence: Evidence) -> None:
    async def twenty() -> list[Any]:
        client = openai_factory("a", asynchronous=True)
        try:
            calls = [client.chat.completions.with_raw_response.create(
                model=sidecar_target.model,
                messages=[{"role": "user", "content": f"Say a colour, call {n}."}])
                for n in range(20)]
            return list(await asyncio.gather(*calls))
        finally:
            await client.close()

    started = time.monotonic()
    answers = asyncio.run(twenty())
    seconds = time.monotonic() - started
    ids = {validated(types().ChatCompletion, raw.http_response.json(),
                     f"async answer {n}").id for n, raw in enumerate(answers)}
    assert len(ids) == 20, f"§2.12: 20 concurrent chats got {len(ids)} distinct ids"
    evidence.record(answers=len(answers), seconds=round(seconds, 3))


@pytest.mark.clause("§2.12/sdk-types")
@pytest.mark.needs("chat_stream")
def test_a_stream_parses_into_the_sdks_chunks(openai_client: OpenAI, sidecar_target: Target,
                                              evidence: Evidence) -> None:
    chunks = stream(openai_client, sidecar_target)
    text = text_of(chunks)
    assert text, "§2.12: no chunk's delta carried content"
    assert finish_of(chunks), "§2.12: no chunk carried a finish_reason"
    evidence.record(chunks=len(chunks), characters=len(text),
                    finish_reason=finish_of(chunks))


@pytest.mark.clause("§2.12/finish-length")
@pytest.mark.needs("chat")
def test_a_cut_answer_says_length(openai_client: OpenAI, sidecar_target: Target,
                                  evidence: Evidence) -> None:
    completion, _ = create(openai_client, sidecar_target, max_tokens=3,
                           messages=[{"role": "user", "content": LONG_PROMPT}])
    used = completion.usage.completion_tokens if completion.usage else None
    if used is None or used < 3:
        insufficient_data("an answer cut by max_tokens=3 (usage.completion_tokens "
                          f"{used})", 0, 1)
    reason = completion.choices[0].finish_reason
    assert reason == "length", (
        f"§2.12: max_tokens=3 cut the answer ({used} tokens) and finish_reason is "
        f"{reason!r}, not 'length'")
    evidence.record(completion_tokens=used, finish_reason=reason)


@pytest.mark.clause("§2.12/finish-length")
@pytest.mark.needs("chat_stream")
def test_a_cut_stream_says_length(openai_client: OpenAI, sidecar_target: Target,
                                  evidence: Evidence) -> None:
    usage = {"stream_options": {"include_usage": True}} \
        if "include_usage" in sidecar_target.capabilities else {}
    chunks = stream(openai_client, sidecar_target, max_tokens=3,
                    messages=[{"role": "user", "content": LONG_PROMPT}], **usage)
    # Cut means 3 tokens came: the usage chunk says so, or 3 chunks with content did
    # (each holds one token at least). A shorter answer ended on its own: nothing to judge.
    counted = next((c.usage.completion_tokens for c in chunks if c.usage), None)
    pieces = sum(1 for chunk in chunks for c in chunk.choices if c.delta.content)
    if (counted if counted is not None else pieces) < 3:
        insufficient_data(f"a streamed answer cut by max_tokens=3 ({counted} tokens by "
                          f"usage, {pieces} content chunks)", 0, 1)
    reason = finish_of(chunks)
    assert reason == "length", (
        f"§2.12: max_tokens=3 cut a streamed answer ({text_of(chunks)!r}) and its last "
        f"finish_reason is {reason!r}, not 'length'")
    evidence.record(chunks=len(chunks), finish_reason=reason)


@pytest.mark.clause("§2.12/n-or-400")
@pytest.mark.needs("chat")
def test_n_is_answered_or_refused(openai_client: OpenAI, sidecar_target: Target,
                                  evidence: Evidence) -> None:
    import openai

    try:
        completion, _ = create(openai_client, sidecar_target, n=2)
    except openai.BadRequestError as refused:
        evidence.record(answer="refused", status=refused.status_code, code=refused.code)
        return
    indexes = sorted(choice.index for choice in completion.choices)
    assert indexes == [0, 1], (
        f"§2.12: n=2 was accepted and answered choices {indexes} (two choices, or a 400)")
    evidence.record(answer="honoured", choices=len(indexes))


def _status_error(client: OpenAI, target: Target, **params: Any) -> Any:
    """The SDK's exception for one chat that must be refused."""
    import openai

    params.setdefault("messages", [{"role": "user", "content": "refuse me"}])
    try:
        client.chat.completions.create(model=target.model, **params)
    except openai.APIStatusError as refused:
        return refused
    pytest.fail("§2.12: a request the contract refuses was answered", pytrace=False)


# (case, what the SDK is given, the class, the status and code, and the section naming
# them)
REFUSALS = [
    # The SDK always sends a key; its Authorization header replaced by another scheme is
    # §3's "not Bearer <token>".
    pytest.param("malformed", {"headers": {"Authorization": "Basic cmJhYzpyYmFj"}},
                 "AuthenticationError", 401, "unauthorized", "§3",
                 marks=pytest.mark.needs("auth"), id="not-bearer"),
    pytest.param("unknown_token", {"key": "never-issued-token"}, "PermissionDeniedError",
                 403, "forbidden", "§3", marks=pytest.mark.needs("auth"), id="unknown-token"),
    pytest.param("schema", {"messages": []}, "UnprocessableEntityError", 422,
                 "invalid_request", "§2.1", id="empty-messages"),
]


@pytest.mark.clause("§2.12/errors")
@pytest.mark.needs("chat")
@pytest.mark.parametrize(("case", "given", "kind", "status", "code", "section"), REFUSALS)
def test_refusals_surface_as_the_sdks_error_classes(
        openai_factory: OpenAIFactory, sidecar_target: Target, evidence: Evidence, case: str,
        given: dict[str, Any], kind: str, status: int, code: str, section: str) -> None:
    import openai

    client = openai_factory("a", key=given.get("key"), headers=given.get("headers"))
    params = {k: v for k, v in given.items() if k not in ("key", "headers")}
    refused = _status_error(client, sidecar_target, **params)
    expected = getattr(openai, kind)
    assert isinstance(refused, expected), (
        f"{section}: the SDK raised {type(refused).__name__} ({refused.status_code}); "
        f"{section} makes this a {status}, which the SDK raises as {kind} (§2.12)")
    assert refused.code == code, (
        f"{section}: the SDK reads error code {refused.code!r} from the {status} body; "
        f"{section} names {code!r} (§2.12)")
    evidence.record(case=case, raised=type(refused).__name__, code=refused.code)


RETRY_ATTEMPTS = 3  # bursts tried before a refilled bucket counts as no data


@pytest.mark.clause("§2.12/retry-after")
@pytest.mark.throttle
@pytest.mark.needs("chat", "auth", "rate_limits")
def test_the_sdks_retry_waits_out_a_429(rate_limited: Throttle,
                                        openai_factory: OpenAIFactory,
                                        sidecar_target: Target, evidence: Evidence) -> None:
    # The SDK client exists before the burst: building it takes longer than the bucket
    # needs to refill one token, and a call that finds a token has nothing to wait out.
    client = openai_factory(rate_limited.tenant, max_retries=3,
                            key=api_key(sidecar_target, rate_limited.tenant))
    limiter = rate_limited.client("write")
    try:
        for _ in range(RETRY_ATTEMPTS):
            burst = rate_limited.exhaust("write", lambda: limiter.chat(
                [{"role": "user", "content": "burst"}]))
            refused = burst.first_refusal
            if refused is None:
                insufficient_data("a 429 before the SDK's call", 0, 1)
            retry_after = refused.headers.get("retry-after", "")
            started = time.monotonic()
            raw = client.chat.completions.with_raw_response.create(
                model=sidecar_target.model,
                messages=[{"role": "user", "content": "after the 429"}])
            seconds = time.monotonic() - started
            validated(types().ChatCompletion, raw.http_response.json(), "the retried answer")
            if raw.retries_taken:
                break
    finally:
        limiter.close()
    if raw.retries_taken == 0:
        # The bucket refilled between each burst and the SDK's call: nothing to judge.
        insufficient_data(f"an SDK call that met the 429 ({RETRY_ATTEMPTS} bursts)", 0, 1)
    assert retry_after.isdigit() and seconds >= int(retry_after) * 0.9, (
        f"§2.12: the SDK retried after {seconds:.2f}s, sooner than Retry-After "
        f"{retry_after!r} (§3): the header is not one the SDK can honour")
    evidence.record(retries_taken=raw.retries_taken, retry_after=retry_after,
                    seconds=round(seconds, 3), burst=burst.sent)


# -- extended features -----------------------------------------------------------------

@pytest.mark.clause("§2.12/models")
@pytest.mark.needs("models")
def test_the_model_list_names_the_targets_model(openai_client: OpenAI, sidecar_target: Target,
                                                evidence: Evidence) -> None:
    from openai.types import Model

    raw = openai_client.models.with_raw_response.list()
    body = raw.http_response.json()
    assert isinstance(body, dict) and body.get("object") == "list" and isinstance(
        body.get("data"), list), f"§2.12: GET /v1/models answered {str(body)[:200]}"
    ids = [validated(Model, item, f"model {n}").id for n, item in enumerate(body["data"])]
    assert sidecar_target.model in ids, (
        f"§2.12: the target's model {sidecar_target.model!r} is not among the listed "
        f"models {ids[:10]}")
    evidence.record(models=ids[:10])


@pytest.mark.clause("§2.12/n")
@pytest.mark.needs("chat", "n")
def test_n_answers_that_many_choices(openai_client: OpenAI, sidecar_target: Target,
                                     evidence: Evidence) -> None:
    completion, _ = create(openai_client, sidecar_target, n=3)
    indexes = sorted(choice.index for choice in completion.choices)
    assert indexes == [0, 1, 2], f"§2.12: n=3 answered choices {indexes}"
    empty = [c.index for c in completion.choices if not c.message.content]
    assert not empty, f"§2.12: choices {empty} carry no text"
    evidence.record(choices=len(indexes))


@pytest.mark.clause("§2.12/stop")
@pytest.mark.needs("chat", "stop")
def test_a_stop_sequence_ends_the_answer_before_it(openai_client: OpenAI,
                                                   sidecar_target: Target,
                                                   evidence: Evidence) -> None:
    asked = [{"role": "user", "content": "Describe the sea in two sentences."}]
    plain, _ = create(openai_client, sidecar_target, messages=asked, max_tokens=40)
    if " " not in (plain.choices[0].message.content or "").strip():
        insufficient_data("an answer with a space to stop at", 0, 1)
    stopped, _ = create(openai_client, sidecar_target, messages=asked, max_tokens=40,
                        stop=[" "])
    text = stopped.choices[0].message.content or ""
    assert " " not in text.strip(), (
        f"§2.12: stop=[' '] and the answer goes on past a space: {text[:80]!r}")
    reason = stopped.choices[0].finish_reason
    assert reason == "stop", f"§2.12: an answer ended by a stop sequence says {reason!r}"
    evidence.record(plain=len(plain.choices[0].message.content or ""), stopped=text[:40],
                    finish_reason=reason)


@pytest.mark.clause("§2.12/content-parts")
@pytest.mark.needs("chat", "content_parts")
def test_content_may_be_an_array_of_text_parts(openai_client: OpenAI, sidecar_target: Target,
                                               evidence: Evidence) -> None:
    words = "Name three colours."
    parts = [{"type": "text", "text": "Name three "}, {"type": "text", "text": "colours."}]
    completion, _ = create(openai_client, sidecar_target,
                           messages=[{"role": "user", "content": parts}])
    text = completion.choices[0].message.content
    assert text, "§2.12: a message of text parts got an answer without text"
    if "seed" in sidecar_target.capabilities:  # then the same words answer the same
        plain, _ = create(openai_client, sidecar_target, temperature=0, seed=7,
                          messages=[{"role": "user", "content": words}])
        parted, _ = create(openai_client, sidecar_target, temperature=0, seed=7,
                           messages=[{"role": "user", "content": parts}])
        assert parted.choices[0].message.content == plain.choices[0].message.content, (
            "§2.12: the parts were not read as their texts joined: the answer differs "
            "from the one the joined string gets")
    evidence.record(parts=len(parts), characters=len(text))


@pytest.mark.clause("§2.12/include-usage")
@pytest.mark.needs("chat_stream", "include_usage")
def test_include_usage_ends_the_stream_with_a_usage_chunk(openai_client: OpenAI,
                                                          sidecar_target: Target,
                                                          evidence: Evidence) -> None:
    chunks = stream(openai_client, sidecar_target,
                    stream_options={"include_usage": True})
    last = chunks[-1]
    assert last.usage is not None and last.choices == [], (
        f"§2.12: the last chunk is {last.to_dict()}, not the usage chunk (choices: [] "
        "and usage)")
    usage = last.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, (
        f"§2.12: the usage chunk's total {usage.total_tokens} is not prompt + completion "
        f"({usage.prompt_tokens} + {usage.completion_tokens})")
    assert usage.completion_tokens > 0, "§2.12: the usage chunk counts no completion token"
    evidence.record(usage=usage.to_dict(), chunks=len(chunks))


@pytest.mark.clause("§2.12/seed")
@pytest.mark.needs("chat_stream", "seed")
def test_the_same_seed_answers_the_same_text_streamed_or_not(openai_client: OpenAI,
                                                             sidecar_target: Target,
                                                             evidence: Evidence) -> None:
    asked = [{"role": "user", "content": "Explain a lighthouse. Then a harbour."}]
    plain, _ = create(openai_client, sidecar_target, messages=asked, temperature=0, seed=7)
    chunks = stream(openai_client, sidecar_target, messages=asked, temperature=0, seed=7)
    text, streamed = plain.choices[0].message.content or "", text_of(chunks)
    assert text, "§2.12: the plain answer carries no text"
    assert streamed == text, (
        f"§2.12: the stream's pieces join into {streamed[:80]!r}, the plain answer is "
        f"{text[:80]!r}")
    evidence.record(characters=len(text), chunks=len(chunks))

