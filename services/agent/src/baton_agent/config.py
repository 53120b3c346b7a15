"""The business's configuration files: system prompt, business profile, media catalogue,
and optionally other ones for some business numbers (`AGENT_NUMBERS_FILE`).

They are read and validated once at start, so a typo stops the service with a clear message
instead of surfacing as a strange answer to a customer.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    field_validator,
)

from baton_agent.settings import AgentSettings
from baton_shared import config_files
from baton_shared.config_files import ConfigFileError


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BusinessProfile(_Strict):
    """Who the agent speaks for.

    Attributes:
        name: the business's name.
        description: what the business does, in a sentence or two.
        tone: how the agent should sound.
        hours: opening hours, as the business wants them told.
        languages: languages the business serves; the agent answers in the customer's.
        policies: rules the agent must follow (returns, prices, what it must never promise).
        apology: sent when the model cannot answer, or the conversation has had its AI answers
            for the hour (`AGENT_MAX_ANSWERS_PER_HOUR`); a person takes over after it.
    """

    name: str = Field(min_length=1)
    description: str = ""
    tone: str = "friendly and concise"
    hours: str = ""
    languages: list[str] = Field(default_factory=lambda: ["en"])
    policies: list[str] = Field(default_factory=list)
    apology: str = Field(min_length=1)


class MediaType(StrEnum):
    """Media kinds WhatsApp can send by link."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"


class MediaItem(_Strict):
    """One item of the media catalogue.

    Attributes:
        id: stable id the model refers to (letters, digits, `-`, `_`, `.`).
        title: short human title.
        description: what it shows, so the model knows when to send it.
        type: image, video, audio or document.
        link: public HTTPS link WhatsApp downloads from.
        caption: caption sent with it (not for audio).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    type: MediaType
    link: HttpUrl
    caption: str | None = Field(None, max_length=1024)

    @field_validator("link")
    @classmethod
    def _https(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme != "https":
            raise ValueError("must be an https:// link (WhatsApp refuses plain http)")
        return value


class MediaCatalogue(_Strict):
    """The media the agent may send.

    Attributes:
        items: the items, ids unique.
    """

    items: list[MediaItem]

    @field_validator("items")
    @classmethod
    def _unique_ids(cls, items: list[MediaItem]) -> list[MediaItem]:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"duplicate media id {item.id!r}")
            seen.add(item.id)
        return items

    def get(self, media_id: str) -> MediaItem | None:
        """The item with `media_id`, if any."""
        return next((item for item in self.items if item.id == media_id), None)


class AgentConfig(BaseModel):
    """Everything the agent reads from files.

    Attributes:
        system_prompt: the prompt template (`{business}`, `{media}` are filled in).
        profile: the business profile.
        catalogue: the media catalogue.
        numbers: the configuration of business numbers that have their own files, by
            `phone_number_id` (each with no `numbers` of its own); this one serves the rest.
    """

    model_config = ConfigDict(frozen=True)

    system_prompt: str
    profile: BusinessProfile
    catalogue: MediaCatalogue
    numbers: dict[str, AgentConfig] = Field(default_factory=dict)


class NumberFiles(_Strict):
    """One business number's own files (`AGENT_NUMBERS_FILE`); each one left out is the
    default's. Relative paths are read from the numbers file's folder.

    Attributes:
        system_prompt_file: its system prompt template.
        business_profile_file: its business profile.
        media_catalogue_file: its media catalogue.
    """

    system_prompt_file: Path | None = None
    business_profile_file: Path | None = None
    media_catalogue_file: Path | None = None


class NumbersFile(_Strict):
    """`AGENT_NUMBERS_FILE`: `numbers`, a mapping of `phone_number_id` to its files."""

    numbers: dict[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,32}$")], NumberFiles]


def load_catalogue(path: Path) -> MediaCatalogue:
    """Read a media catalogue: a list of items, or a mapping with an `items` list."""
    return config_files.load(MediaCatalogue, path, list_key="items")


def load_config(settings: AgentSettings) -> AgentConfig:
    """Read and validate the configuration files; raise ConfigFileError on any problem."""
    default = _load_one(
        settings.system_prompt_file, settings.business_profile_file, settings.media_catalogue_file
    )
    if settings.numbers_file is None:
        return default
    path = settings.numbers_file
    listed = config_files.load(NumbersFile, path)
    numbers = {}
    for number, files in listed.numbers.items():
        try:
            numbers[number] = _load_one(
                _beside(path, files.system_prompt_file, settings.system_prompt_file),
                _beside(path, files.business_profile_file, settings.business_profile_file),
                _beside(path, files.media_catalogue_file, settings.media_catalogue_file),
            )
        except ConfigFileError as exc:
            raise ConfigFileError(f"{path}: business number {number}: {exc}") from None
    return default.model_copy(update={"numbers": numbers})


def _beside(numbers_file: Path, own: Path | None, default: Path) -> Path:
    """A number's own file (relative to the numbers file), or the default's."""
    return default if own is None else numbers_file.parent / own


def _load_one(prompt_file: Path, profile_file: Path, catalogue_file: Path) -> AgentConfig:
    prompt = config_files.read_text(prompt_file).strip()
    if not prompt:
        raise ConfigFileError(f"{prompt_file}: the system prompt is empty")
    return AgentConfig(
        system_prompt=prompt,
        profile=config_files.load(BusinessProfile, profile_file),
        catalogue=load_catalogue(catalogue_file),
    )
