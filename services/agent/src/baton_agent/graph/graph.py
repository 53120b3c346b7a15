"""The conversation graph: route on the mode, then model ⇄ tools until an answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from baton_agent.config import AgentConfig
from baton_agent.graph.nodes import Nodes, route_mode
from baton_agent.graph.state import AgentState
from baton_agent.settings import AgentSettings

RECORD = "record"


def build_graph(
    models: BaseChatModel | Sequence[BaseChatModel],
    config: AgentConfig,
    settings: AgentSettings,
    checkpointer: BaseCheckpointSaver[Any] | None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the graph; one thread per conversation in `checkpointer`.

    `models`: one chat model, or identical ones the model calls are spread over.

    START ─(ai)→ model ─(tool calls)→ tools ─→ model ... → END
          │                               └(calls spent, customer unanswered)→ give_up → END
          ├(ai, answers for the hour used up)→ hand_off → END
          └(operator / pending_human)→ record → END
    """
    nodes = Nodes([models] if isinstance(models, BaseChatModel) else models, config, settings)
    builder = StateGraph(AgentState)
    builder.add_node(RECORD, nodes.record)
    builder.add_node("model", nodes.call_model)
    builder.add_node("tools", nodes.run_tools)
    builder.add_node("hand_off", nodes.hand_off)
    builder.add_node("give_up", nodes.give_up)
    builder.add_conditional_edges(START, route_mode, ["model", RECORD, "hand_off"])
    builder.add_edge(RECORD, END)
    builder.add_edge("hand_off", END)
    builder.add_conditional_edges("model", nodes.after_model, ["tools", END])
    builder.add_conditional_edges("tools", nodes.after_tools, ["model", "give_up", END])
    builder.add_edge("give_up", END)
    return builder.compile(checkpointer=checkpointer)
