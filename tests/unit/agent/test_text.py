# ruff: noqa: RUF001 (sentences in other scripts, their own stops on purpose)
"""Long answers split into WhatsApp-sized messages at sentence boundaries."""

from __future__ import annotations

import pytest

from baton_agent.text import split_text
from baton_shared.whatsapp_limits import TEXT_BODY


def test_short_text_is_one_message() -> None:
    assert split_text("  Hello there.  ") == ["Hello there."]
    assert split_text("   ") == []


def test_long_text_splits_between_sentences() -> None:
    sentence = "Our roastery opens at nine and closes at six. "
    text = sentence * 200
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= TEXT_BODY for p in parts)
    assert all(p.endswith("six.") for p in parts)
    assert " ".join(parts) == text.strip()


@pytest.mark.parametrize("end", ["?", "!", "…", "\uff1f", "。"])
def test_other_sentence_ends(end: str) -> None:
    parts = split_text(f"Is it open{end} " * 10, limit=40)
    assert all(p.endswith(end) for p in parts)


def test_sentence_longer_than_the_limit_is_cut_at_a_space() -> None:
    text = "word " * 30
    parts = split_text(text, limit=42)
    assert all(len(p) <= 42 for p in parts)
    assert " ".join(parts) == text.strip()


def test_text_without_spaces_is_cut_hard() -> None:
    parts = split_text("x" * 100, limit=30)
    assert [len(p) for p in parts] == [30, 30, 30, 10]


@pytest.mark.parametrize(
    ("sentence", "end"),
    [
        ("营业时间是早上九点到晚上六点。", "。"),  # Chinese: no space after a sentence
        ("お店は九時に開きますか？", "？"),  # Japanese
        ("दुकान नौ बजे खुलती है।", "।"),  # Hindi (a space between words, none needed after)
        ("کیا دکان کھلی ہے؟", "؟"),  # Urdu
        ("دکان نو بجے کھلتی ہے۔", "۔"),
    ],
    ids=["zh", "ja", "hi", "ur question", "ur stop"],
)
def test_sentences_of_scripts_with_their_own_stops(sentence: str, end: str) -> None:
    text = sentence * 400  # well over 4,096 characters, no whitespace between sentences
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= TEXT_BODY for p in parts)
    assert all(p.endswith(end) for p in parts)  # never cut mid-sentence
    assert "".join(parts) == text
