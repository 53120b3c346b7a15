"""The agent's Prometheus metrics (default registry, served by `build_app` at /metrics).

- `baton_agent_turns_total` (`outcome` = answered, recorded, handed_off, failed): turns
  logged (once per turn, after the commit).
- `baton_agent_model_seconds` (histogram): each model call, retries included.
- `baton_agent_tokens_total` (`kind` = input, output): from the answer's usage metadata.
- `baton_agent_tool_calls_total` (`tool`): tool calls the model made.
- `baton_agent_errors_total` (`reason`): failed model calls (`timeout`, `empty_answer`,
  `model_error`) and turns the model could not answer after every retry (`gave_up`).
- `baton_agent_answer_limit_total`: turns handed to a person because their conversation had
  had `AGENT_MAX_ANSWERS_PER_HOUR` AI answers within the hour.
- `baton_agent_checkpoint_threads_pruned_total`: conversations pruned to their latest
  checkpoint (`AGENT_CHECKPOINT_HISTORY_HOURS`).
"""

from __future__ import annotations

from langchain_core.messages import AIMessage
from prometheus_client import Counter, Histogram

TURNS = Counter("baton_agent_turns_total", "Turns handled, by outcome", ["outcome"])
MODEL_SECONDS = Histogram(
    "baton_agent_model_seconds",
    "Latency of each model call (each try)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0),
)
TOKENS = Counter("baton_agent_tokens_total", "Model tokens, by kind", ["kind"])
TOOL_CALLS = Counter("baton_agent_tool_calls_total", "Tool calls by the model", ["tool"])
ERRORS = Counter("baton_agent_errors_total", "Model errors, by reason", ["reason"])
TURNS_GIVEN_UP = Counter(
    "baton_agent_turns_given_up_total",
    "Turns that failed at their last delivery, ended with the apology and a person asked for",
)
ANSWER_LIMIT = Counter(
    "baton_agent_answer_limit_total",
    "Turns handed to a person because the conversation reached its AI answers per hour",
)
CHECKPOINT_THREADS_PRUNED = Counter(
    "baton_agent_checkpoint_threads_pruned_total",
    "Conversations pruned to their latest checkpoint",
)


def count_tokens(answer: AIMessage) -> None:
    """Add the answer's input and output tokens, when the model reported them."""
    usage = answer.usage_metadata
    if usage is None:
        return
    TOKENS.labels("input").inc(usage.get("input_tokens", 0))
    TOKENS.labels("output").inc(usage.get("output_tokens", 0))
