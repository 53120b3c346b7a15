"""Which messages the sender checks against the conversation's control state, and the
verdict for each (the rules of `baton_sender.fencing`)."""

from __future__ import annotations

from baton_sender.fencing import decide, fenced
from baton_shared.events import Author

HUMAN = {"mode": "operator", "epoch": "2"}


def test_operator_messages_are_never_fenced() -> None:
    assert not fenced(Author.OPERATOR, None)
    assert not fenced(Author.OPERATOR, 3)


def test_ai_messages_and_handoff_notices_are_fenced() -> None:
    assert fenced(Author.AI, 1)
    assert fenced(Author.SYSTEM, 1)
    assert not fenced(Author.SYSTEM, None)  # a system message outside any turn


def test_an_unknown_author_is_fenced_as_the_ai() -> None:
    # A newer producer's author: held back while a person holds the conversation.
    assert fenced(Author.UNKNOWN, None)
    assert fenced(Author.UNKNOWN, 1)
    fence = decide(HUMAN, Author.UNKNOWN, 1)
    assert fence is not None
    assert (fence.mode, fence.epoch) == ("operator", 2)
    assert decide({"mode": "ai", "epoch": "2"}, Author.UNKNOWN, 2) is None
