"""The graph's nodes: route on the mode, call the model (with retries), run its tools."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_google_genai._function_utils import convert_to_genai_function_declarations

from baton_agent import metrics
from baton_agent.config import AgentConfig
from baton_agent.graph import prompts, tools
from baton_agent.graph.state import AgentState, Output
from baton_agent.settings import AgentSettings
from baton_agent.text import split_text

log = logging.getLogger(__name__)


class PromptBlockedError(Exception):
    """Gemini refused the prompt itself (`promptFeedback.blockReason`: no candidate at all).
    Not retried: asking the same again gets the same verdict, so the customer gets the
    apology and a person at once instead of after every retry's backoff. (A blocked answer,
    `finishReason` SAFETY, is retried: another sample may pass.)"""


def _prompt_block(answer: AIMessage) -> str | None:
    """The reason Gemini gave for blocking the prompt, if it did."""
    feedback = (answer.response_metadata or {}).get("prompt_feedback")
    reason = feedback.get("block_reason") if isinstance(feedback, dict) else None
    return None if not reason else str(getattr(reason, "value", reason))


class EmptyAnswerError(Exception):
    """The model answered with neither text nor a tool call."""


class TurnTimeoutError(TimeoutError):
    """The turn's `AGENT_TURN_TIMEOUT_SECONDS` are spent: no model call or retry starts."""


def text_outputs(text: str) -> list[Output]:
    """Text outputs, split at sentence boundaries into WhatsApp-sized messages."""
    return [Output(kind="text", text=part, link=None, caption=None) for part in split_text(text)]


def _error_reason(exc: Exception) -> str:
    """A small, fixed set of labels for `baton_agent_errors_total`."""
    if isinstance(exc, EmptyAnswerError):
        return "empty_answer"
    if isinstance(exc, PromptBlockedError):
        return "prompt_blocked"
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "timeout"
    return "model_error"


# Routing functions and `record` are coroutines on purpose: LangGraph runs a plain function
# node or edge in a thread pool (a thread hop, and GIL traffic, per step of every turn).


async def route_mode(state: AgentState) -> Literal["model", "record", "hand_off"]:
    """Answer in `ai` mode (or hand off, when the conversation has had its answers for the
    hour); only record the turn while a person holds the conversation."""
    if state.get("mode", "ai") != "ai":
        return "record"
    return "hand_off" if state.get("limited") else "model"


def _bind_tools(model: BaseChatModel, declarations: list[dict[str, Any]]) -> Runnable[Any, Any]:
    """`model` with the tools bound, converted once.

    `ChatGoogleGenerativeAI.bind_tools` keeps OpenAI-format dicts, which every call converts
    to google-genai `Tool` objects again (JSON-schema dereferencing and pydantic building,
    a few percent of a turn's CPU); bound as `Tool` objects they are used as they are. The
    request is the same: it is the conversion each call would make.
    """
    if isinstance(model, ChatGoogleGenerativeAI):
        return model.bind(tools=convert_to_genai_function_declarations(declarations))
    return model.bind_tools(declarations)


@dataclass(frozen=True, slots=True)
class Persona:
    """Who answers a business number's customers: its configuration, its filled-in system
    prompt, and the models with its tools bound (its catalogue's media ids).

    Attributes:
        config: the number's configuration.
        prompt: its system prompt.
        models: the chat models with its tools bound, one per model (same order).
    """

    config: AgentConfig
    prompt: SystemMessage
    models: list[Runnable[Any, Any]]

    @classmethod
    def of(cls, config: AgentConfig, models: Sequence[BaseChatModel]) -> Persona:
        """The persona of `config`, over `models`."""
        declarations = tools.declarations(config.catalogue)
        return cls(
            config=config,
            prompt=SystemMessage(content=prompts.system_prompt(config)),
            models=[_bind_tools(m, declarations) for m in models],
        )


class Nodes:
    """The model and tool nodes, with the models, the configuration and the settings.

    Each business number with its own files (`config.numbers`) answers as its own `Persona`;
    every other number as the default one."""

    def __init__(
        self, models: Sequence[BaseChatModel], config: AgentConfig, settings: AgentSettings
    ):
        if not models:
            raise ValueError("at least one chat model is needed")
        self.settings = settings
        self.default = Persona.of(config, models)
        self.personas = {n: Persona.of(c, models) for n, c in config.numbers.items()}
        self._in_flight = [0] * len(models)

    def persona(self, state: AgentState) -> Persona:
        """Who answers this turn: its business number's persona."""
        return self.personas.get(state.get("phone_number_id", ""), self.default)

    async def _ainvoke(self, persona: Persona, messages: list[BaseMessage]) -> Any:
        """One model call on the least busy of the models (each has its own HTTP pool; a
        persona's models are bindings of the same ones, in the same order)."""
        in_flight = self._in_flight
        shard = min(range(len(in_flight)), key=in_flight.__getitem__)
        in_flight[shard] += 1
        try:
            return await persona.models[shard].ainvoke(messages)
        finally:
            in_flight[shard] -= 1

    async def record(self, state: AgentState) -> dict[str, Any]:
        """The customer's messages are already in the thread: only keep it within bounds."""
        dropped = self.overflow(state["messages"])
        return {"messages": dropped} if dropped else {}

    async def hand_off(self, state: AgentState) -> dict[str, Any]:
        """The conversation has had `max_answers_per_hour` AI answers: no model call; the
        customer gets the apology (which says a person takes over) and a person does.

        An auto-responder on the customer's side answering every answer of ours would loop
        for ever, a model call each time; this ends it, and the apology's own auto-reply
        lands in `pending_human`, where it is only recorded."""
        limit = self.settings.max_answers_per_hour
        log.warning("AI answer limit (%d an hour) reached: handing off to a person", limit)
        metrics.ANSWER_LIMIT.inc()
        return _apologise(
            self.persona(state),
            dropped=self.overflow(state["messages"]),
            outputs=[],
            handoff=f"{limit} AI answers within an hour: another bot answering, or abuse?",
        )

    def overflow(self, messages: list[AnyMessage]) -> list[RemoveMessage]:
        """Removals of the thread's oldest messages beyond `thread_messages` (none if within).

        The model never sees them (`history` shows fewer), and the operator transcript keeps
        the whole conversation; without this every checkpoint write would carry the whole
        conversation, growing with its length.
        """
        excess = len(messages) - self.settings.thread_messages
        return [RemoveMessage(id=m.id) for m in messages[:excess] if m.id] if excess > 0 else []

    def history(self, messages: list[AnyMessage], prompt: SystemMessage) -> list[BaseMessage]:
        """The recent conversation, starting at a customer message (never mid tool call).

        What `trim_messages(strategy="last", token_counter=len, start_on="human")` returns,
        without its per-call signature inspection: the last `history_messages` messages,
        from the first customer message among them.
        """
        recent = messages[-self.settings.history_messages :]
        start = next((i for i, m in enumerate(recent) if isinstance(m, HumanMessage)), None)
        return [prompt, *([] if start is None else recent[start:])]

    async def call_model(self, state: AgentState) -> dict[str, Any]:
        """Ask the model; after the last failed try, apologise and hand off to a person."""
        calls = state.get("model_calls", 0) + 1
        outputs = list(state.get("outputs", []))
        # Once per turn, before its first model call: trim the thread.
        dropped = self.overflow(state["messages"]) if calls == 1 else []
        persona = self.persona(state)
        # After a tool round the model may have nothing to add (the API then answers a
        # candidate without parts): the tools' results may have been the answer.
        after_tools = calls > 1
        deadline = state.get("started_at", time.time()) + self.settings.turn_timeout_seconds
        try:
            answer = await self._invoke_with_retries(
                persona,
                self.history(state["messages"], persona.prompt),
                accept_empty=after_tools,
                deadline=deadline,
            )
        except Exception as exc:
            log.error("model failed after %d tries: %s", self.settings.gemini_retries, exc)
            metrics.ERRORS.labels("gave_up").inc()
            reason = f"the assistant could not answer ({type(exc).__name__})"
            apology = _apologise(persona, dropped=dropped, outputs=outputs, handoff=reason)
            return {**apology, "failed": True, "model_calls": calls}
        if not answer.text.strip() and not answer.tool_calls:  # nothing to add
            if unanswered(state):
                return {**self._give_up(state, dropped), "model_calls": calls}
            return (
                {"messages": dropped, "model_calls": calls} if dropped else {"model_calls": calls}
            )
        return {
            "messages": [*dropped, answer],
            "outputs": outputs + text_outputs(answer.text),
            "model_calls": calls,
        }

    async def _invoke_with_retries(
        self,
        persona: Persona,
        messages: list[BaseMessage],
        *,
        accept_empty: bool = False,
        deadline: float,
    ) -> AIMessage:
        """One answer, retried with backoff on errors and (unless `accept_empty`) on an
        answer with neither text nor a tool call; nothing runs past `deadline` (epoch s)."""
        s = self.settings
        for attempt in range(1, s.gemini_retries + 1):
            started = time.perf_counter()
            left = deadline - time.time()
            if left <= 0:
                raise TurnTimeoutError(
                    f"turn past AGENT_TURN_TIMEOUT_SECONDS ({s.turn_timeout_seconds:g} s)"
                )
            try:
                try:
                    async with asyncio.timeout(left):
                        answer = await self._ainvoke(persona, messages)
                finally:
                    metrics.MODEL_SECONDS.observe(time.perf_counter() - started)
                if not isinstance(answer, AIMessage):
                    raise TypeError(f"unexpected model output {type(answer).__name__}")
                metrics.count_tokens(answer)
                if (blocked := _prompt_block(answer)) is not None:
                    raise PromptBlockedError(f"Gemini blocked the prompt ({blocked})")
                if not (accept_empty or answer.text.strip() or answer.tool_calls):
                    raise EmptyAnswerError("the model answered nothing")
                return answer
            except Exception as exc:
                metrics.ERRORS.labels(_error_reason(exc)).inc()
                delay = s.gemini_retry_backoff_seconds * 2 ** (attempt - 1)
                final = isinstance(exc, PromptBlockedError)  # the same prompt: the same verdict
                if final or attempt == s.gemini_retries or time.time() + delay >= deadline:
                    raise
                log.warning("model call %d failed (%s); retrying in %.1fs", attempt, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def run_tools(self, state: AgentState) -> dict[str, Any]:
        """Run every tool call of the model's last answer."""
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        outputs = list(state.get("outputs", []))
        handoff = state.get("handoff")
        catalogue = self.persona(state).config.catalogue
        results: list[ToolMessage] = []
        for call in last.tool_calls:
            metrics.TOOL_CALLS.labels(call["name"]).inc()
            effect = tools.call_tool(call["name"], call["args"], catalogue)
            outputs += effect.outputs
            handoff = handoff or effect.handoff
            results.append(
                ToolMessage(content=effect.result, tool_call_id=call["id"] or "", name=call["name"])
            )
        return {"messages": results, "outputs": outputs, "handoff": handoff}

    async def after_model(self, state: AgentState) -> Literal["tools", "__end__"]:
        """Run the tools the model called, if any."""
        last = state["messages"][-1]
        if state.get("failed") or not isinstance(last, AIMessage) or not last.tool_calls:
            return "__end__"
        return "tools"

    async def after_tools(self, state: AgentState) -> Literal["model", "give_up", "__end__"]:
        """Let the model read the tool results and answer, within the per-turn budget; a
        question with choices was the answer already (no second model call, no extra text).
        A budget spent with the customer still unanswered ends in `give_up`."""
        if state.get("model_calls", 0) >= self.settings.max_model_calls:
            return "give_up" if unanswered(state) else "__end__"
        results = _last_tool_results(state["messages"])
        if results and all(r.content == tools.CHOICES_SENT for r in results):
            return "__end__"
        return "model"

    async def give_up(self, state: AgentState) -> dict[str, Any]:
        """The turn's model calls are spent and the customer would hear nothing (tools that
        kept failing), or would not hear that a person is coming: the apology, a person."""
        return self._give_up(state, [])

    def _give_up(self, state: AgentState, dropped: list[RemoveMessage]) -> dict[str, Any]:
        outputs = list(state.get("outputs", []))
        log.warning("turn %s ended without an answer: handing off", state.get("turn_id"))
        metrics.ERRORS.labels("no_answer").inc()
        asked = state.get("handoff")  # the model asked for a person: not a failure
        handoff = asked or "the assistant found no answer"
        apology = _apologise(self.persona(state), dropped=dropped, outputs=outputs, handoff=handoff)
        return {**apology, "failed": not (outputs or asked)}


def unanswered(state: AgentState) -> bool:
    """Whether ending the turn now would leave the customer without a word: nothing to send,
    or a handoff without any text (the notice that a person is coming)."""
    outputs = state.get("outputs", [])
    if not outputs:
        return True
    return bool(state.get("handoff")) and not any(o["kind"] == "text" for o in outputs)


def _apologise(
    persona: Persona, *, dropped: list[RemoveMessage], outputs: list[Output], handoff: str
) -> dict[str, Any]:
    """The state update that sends the persona's apology (it says a person takes over) after
    `outputs`, hands off for `handoff`, and drops `dropped` from the thread."""
    apology = persona.config.profile.apology
    return {
        "messages": [*dropped, AIMessage(content=apology)],
        "outputs": outputs + text_outputs(apology),
        "handoff": handoff,
    }


def _last_tool_results(messages: list[AnyMessage]) -> list[ToolMessage]:
    """The tool results at the end of the thread (the last tool round's)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    return results
