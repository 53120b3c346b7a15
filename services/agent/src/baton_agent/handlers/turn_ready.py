"""`conv.turns` TurnReady: answer the turn (or only record it) exactly once."""

from __future__ import annotations

import logging
from datetime import timedelta

from baton_agent import metrics
from baton_agent.commands import outcome_of, turn_events, typing_command
from baton_agent.context import PRODUCER, AgentContext
from baton_agent.db import repo
from baton_agent.db.repo import Control
from baton_agent.fencing import newer, read_fence
from baton_agent.graph.nodes import text_outputs
from baton_agent.runner import TurnRun
from baton_shared.db import add_to_outbox
from baton_shared.events import MessageRequested, Mode, TurnReady, conversation_id_for, utcnow

log = logging.getLogger(__name__)

# The window of `AGENT_MAX_ANSWERS_PER_HOUR`.
ANSWER_WINDOW = timedelta(hours=1)


async def handle_turn_ready(ctx: AgentContext, event: TurnReady) -> None:
    """Run the graph, then log the turn and stage its events in one transaction.

    The mode and epoch are the newer (by epoch) of the agent's copy and the operator-api's
    fencing hash, which is written before the operator's HTTP answer and so can be ahead of
    the `conv.control` events; a newer hash state is stored locally with the turn.

    A repeat (same event, or same turn in another event) changes nothing: the turn log has
    the turn (checked first, and again by its unique key at the commit). A crash after the
    graph but before the commit re-runs into the checkpoint, which returns the same outputs
    and the control they were decided under, and the command ids depend only on (turn,
    position): the customer gets one answer, fenced by the epoch it was written under.
    """
    turn = event.payload
    conversation_id = event.conversation_id or conversation_id_for(turn.phone_number_id, turn.wa_id)
    limit = ctx.settings.max_answers_per_hour
    async with ctx.threads.exclusive(conversation_id) as thread:
        async with ctx.reader() as conn:
            state = await repo.turn_state(
                conn, turn.turn_id, conversation_id, since=utcnow() - ANSWER_WINDOW, cap=limit
            )
        if state.done:  # a repeat (this event again, or the turn in another event)
            return
        # The operator-api's hash may be ahead of our copy (its event not consumed yet).
        own = state.control
        control = newer(own, await read_fence(ctx.bus, conversation_id))
        # A newer epoch from the hash is a takeover or handback we had not stored: a new count.
        limited = bool(limit) and control is own and state.recent_answers >= limit
        if ctx.settings.typing_indicator and turn.messages and not limited:
            shown = control
            if state.checkpointed_turn_id == str(turn.turn_id):  # a repeat: rare
                # Its outputs are the first run's, decided under that run's control.
                shown = await ctx.threads.checkpointed_control(thread, control)
            if shown.mode is Mode.AI:
                await _show_typing(ctx, event, shown.epoch)
        run = await ctx.threads.run_held(
            thread,
            turn,
            control,
            state.checkpointed_turn_id,
            limited=limited,
            operator_messages=state.operator_messages,
            back_from_a_person=state.back_from_a_person(control),
        )

    await _commit(ctx, event, conversation_id, run, control, own)


async def _commit(
    ctx: AgentContext,
    event: TurnReady,
    conversation_id: str,
    run: TurnRun,
    control: Control,
    own: Control,
) -> None:
    """Log the turn and stage its events in one transaction (nothing if another delivery of
    the turn logged it first); `control` is what the turn ran under, `own` the agent's copy
    before it."""
    turn = event.payload
    ran_under = run.control  # a repeat's first run may have had another control
    async with ctx.session() as session:
        record = repo.TurnRecord(
            turn_id=turn.turn_id,
            conversation_id=conversation_id,
            sequence=turn.sequence,
            mode=ran_under.mode.value,
            epoch=ran_under.epoch,
            outcome=outcome_of(run).value,
            outputs=len(run.outputs),
            handoff_reason=run.handoff,
        )
        if not await repo.log_turn(session, record):
            return  # another delivery of the same turn won the race
        await repo.carry_operator_messages(session, turn.turn_id, run.carried)
        if control is not own:  # remember what the hash told us
            await repo.apply_control(
                session,
                conversation_id,
                phone_number_id=turn.phone_number_id,
                wa_id=turn.wa_id,
                mode=control.mode,
                epoch=control.epoch,
                decided=True,
            )
        if run.handoff:
            await repo.apply_control(
                session,
                conversation_id,
                phone_number_id=turn.phone_number_id,
                wa_id=turn.wa_id,
                mode=Mode.PENDING_HUMAN,
                epoch=ran_under.epoch + 1,
            )
        await add_to_outbox(session, *turn_events(event, run))
    metrics.TURNS.labels(record.outcome).inc()
    log.info(
        "turn %s of %s: %s, %d outputs",
        turn.turn_id,
        conversation_id,
        record.outcome,
        record.outputs,
    )


async def give_up_on_turn(ctx: AgentContext, event: TurnReady, error: BaseException) -> None:
    """The last delivery of a turn failed with an error that retrying has not cured (a fault
    in the agent, a message it cannot read): instead of silence (its entry dead-lettered, the
    buffer waiting out `BUFFER_STUCK_TURN_SECONDS`, the customer never answered), the turn
    ends as failed with the apology, which says a person takes over, and a person is asked
    for. Outside `ai` mode it is only recorded. Once per turn, like any turn: a turn logged
    already is left as it is."""
    turn = event.payload
    conversation_id = event.conversation_id or conversation_id_for(turn.phone_number_id, turn.wa_id)
    async with ctx.reader() as conn:
        state = await repo.turn_state(
            conn, turn.turn_id, conversation_id, since=utcnow() - ANSWER_WINDOW, cap=0
        )
    if state.done:
        return
    own = state.control
    control = newer(own, await read_fence(ctx.bus, conversation_id))
    if control.mode is Mode.AI:
        config = ctx.config.numbers.get(turn.phone_number_id, ctx.config)
        reason = f"the agent could not handle this turn ({type(error).__name__})"
        run = TurnRun(text_outputs(config.profile.apology), reason, True, control, [])
    else:
        run = TurnRun([], None, False, control, [])
    metrics.TURNS_GIVEN_UP.inc()
    await _commit(ctx, event, conversation_id, run, control, own)


async def _show_typing(ctx: AgentContext, event: TurnReady, epoch: int) -> None:
    """Publish the typing indicator now, before the model call (not with the turn's outputs,
    which leave at its commit). A cosmetic call: a failure is logged, the turn goes on."""
    command = typing_command(event, epoch)
    try:
        await ctx.bus.publish(MessageRequested.create(command, producer=PRODUCER, cause=event))
    except Exception:
        log.warning(
            "typing indicator for turn %s not published", event.payload.turn_id, exc_info=True
        )
