"""Configuration files: the shipped defaults load, mistakes stop the start with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton_agent.config import load_catalogue, load_config
from baton_agent.graph.prompts import system_prompt
from baton_agent.settings import AgentSettings
from baton_shared.config_files import ConfigFileError


def settings(**values: object) -> AgentSettings:
    return AgentSettings(database_url="postgresql://x/y", baton_env="test", **values)  # type: ignore[arg-type]


def test_shipped_defaults_load_and_fill_the_prompt() -> None:
    config = load_config(settings())
    prompt = system_prompt(config)
    assert "Baton Coffee Roasters" in prompt
    assert "`sample-1` (image)" in prompt
    assert "{business}" not in prompt
    assert config.profile.apology not in prompt


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_catalogue_accepts_json_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "media.json",
        '[{"id": "a", "title": "A", "description": "d", "type": "image",'
        ' "link": "https://e.com/a.jpg"}]',
    )
    assert [i.id for i in load_catalogue(path).items] == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "items: [{id: a, title: A, description: d, type: gif, link: 'https://e.com'}]",
            "items.0.type",
        ),
        (
            "items: [{id: a, title: A, description: d, type: image, link: 'http://e.com'}]",
            "https://",
        ),
        (
            "items: [{id: 'a b', title: A, description: d, type: image, link: 'https://e.com'}]",
            "items.0.id",
        ),
        ("items: [{id: a, title: A, type: image, link: 'https://e.com'}]", "items.0.description"),
        (
            "items: [{id: a, title: A, description: d, type: image, link: 'https://e.com'},"
            " {id: a, title: B, description: d, type: image, link: 'https://e.com'}]",
            "duplicate media id 'a'",
        ),
        ("items: [\n  - broken", "not valid yaml"),
    ],
)
def test_bad_catalogue_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "media.yaml", text)
    with pytest.raises(ConfigFileError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(settings(AGENT_SYSTEM_PROMPT_FILE=str(tmp_path / "nope.md")))


def test_profile_needs_an_apology(tmp_path: Path) -> None:
    path = write(tmp_path, "profile.yaml", "name: Shop\n")
    with pytest.raises(ConfigFileError, match="apology"):
        load_config(settings(AGENT_BUSINESS_PROFILE_FILE=str(path)))


def test_placeholder_api_key_refused_in_production() -> None:
    with pytest.raises(ValueError, match="GOOGLE_API_KEY"):
        AgentSettings(database_url="postgresql://x/y", baton_env="production")


def test_the_thread_must_keep_what_the_model_is_shown() -> None:
    with pytest.raises(ValueError, match=r"AGENT_THREAD_MESSAGES \(10\) must be at least"):
        settings(AGENT_HISTORY_MESSAGES=40, AGENT_THREAD_MESSAGES=10)
    assert settings(AGENT_HISTORY_MESSAGES=40, AGENT_THREAD_MESSAGES=40).thread_messages == 40


def test_cli_refuses_a_bad_catalogue_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from baton_agent.main import cli

    path = write(tmp_path, "media.yaml", "items: [{id: a}]")
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("BATON_ENV", "test")
    monkeypatch.setenv("AGENT_MEDIA_CATALOGUE_FILE", str(path))
    with pytest.raises(SystemExit) as exited:
        cli(["serve"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid configuration file" in err
    assert "items.0.title: Field required" in err


def test_numbers_file_gives_some_numbers_their_own_files(tmp_path: Path) -> None:
    (tmp_path / "tea").mkdir()
    write(tmp_path / "tea", "profile.yaml", "name: Baton Tea House\napology: Sorry!\n")
    write(tmp_path / "tea", "prompt.md", "You are {business_name}'s tea expert.")
    numbers = write(
        tmp_path,
        "numbers.yaml",
        "numbers:\n"
        "  '200300400':\n"
        "    business_profile_file: tea/profile.yaml\n"
        "    system_prompt_file: tea/prompt.md\n",
    )
    config = load_config(settings(AGENT_NUMBERS_FILE=str(numbers)))

    tea = config.numbers["200300400"]
    assert tea.profile.name == "Baton Tea House"
    assert system_prompt(tea) == "You are Baton Tea House's tea expert."
    assert tea.catalogue == config.catalogue  # not given: the default's
    assert list(config.numbers) == ["200300400"]  # every other number: the defaults
    assert config.profile.name == "Baton Coffee Roasters"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("numbers:\n  '200': {business_profile_file: missing.yaml}\n", "business number 200"),
        ("numbers:\n  '200': {business_profile_file: missing.yaml}\n", "cannot read"),
        ("numbers:\n  '+34 600': {}\n", "numbers.+34 600"),
        ("numbers:\n  '200': {profile: x.yaml}\n", "numbers.200.profile"),
        ("numbers: [200]\n", "numbers"),
    ],
)
def test_bad_numbers_file_names_file_number_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, "numbers.yaml", text)
    with pytest.raises(ConfigFileError) as raised:
        load_config(settings(AGENT_NUMBERS_FILE=str(path)))
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_a_live_turn_is_never_reclaimed() -> None:
    with pytest.raises(ValueError, match=r"RECLAIM_IDLE_MS \(60000\) must exceed"):
        settings(AGENT_TURN_TIMEOUT_SECONDS=90, RECLAIM_IDLE_MS=60_000)
    defaults = settings()
    assert defaults.reclaim_idle_ms > defaults.turn_timeout_seconds * 1000


def test_the_example_numbers_file_loads(tmp_path: Path) -> None:
    """config/agent/numbers.example.yaml is what a newcomer copies: it must be valid once the
    files it names exist."""
    root = Path(__file__).resolve().parents[3]
    example = (root / "config" / "agent" / "numbers.example.yaml").read_text(encoding="utf-8")
    numbers = write(tmp_path, "numbers.yaml", example)
    defaults = AgentSettings.model_fields["business_profile_file"].default.parent
    (tmp_path / "shop-es").mkdir()
    for name in ("business_profile.yaml", "media_catalogue.yaml"):
        (tmp_path / "shop-es" / name).write_bytes((defaults / name).read_bytes())
    config = load_config(settings(AGENT_NUMBERS_FILE=str(numbers)))
    assert list(config.numbers) == ["106540352242922"]
