"""Request and response bodies. Requests also accept the body shapes of the system existing
users script against (`phone` for `wa_id`, `message` for `text`, media by `id` + `mime_type`)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

CustomerId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[A-Za-z0-9._:-]{1,64}$")
]
PhoneNumberId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MediaType = Literal["image", "video", "audio", "document", "sticker"]


class CustomerRef(BaseModel):
    """Which conversation: a customer, and the business number when they have several."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    wa_id: CustomerId | None = Field(None, description="the customer's WhatsApp id")
    phone: CustomerId | None = Field(
        None, description="compatibility alias of `wa_id` (a leading `+` is ignored)"
    )
    phone_number_id: PhoneNumberId | None = Field(
        None, description="business number; needed only when the customer has several"
    )

    @model_validator(mode="after")
    def _customer_given(self) -> Self:
        if not (self.wa_id or self.phone):
            raise ValueError("wa_id (or phone) is required")
        return self

    @property
    def customer(self) -> str:
        """The customer's wa_id, from either field."""
        return str(self.wa_id or self.phone).lstrip("+")


class TakeoverIn(CustomerRef):
    """Take a conversation over from the AI (or, with `force`, from another operator)."""

    reason: str | None = Field(None, max_length=500)
    force: bool = Field(False, description="admins only: take it from another operator")


class HandbackIn(CustomerRef):
    """Hand a conversation back to the AI."""

    note: str | None = Field(None, max_length=2000)


class ResolveIn(BaseModel):
    """Mark a conversation resolved."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    note: str | None = Field(None, max_length=2000)


class MediaIn(BaseModel):
    """An attachment by link or uploaded media id (`mime_type` is the compatibility shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: MediaType | None = None
    link: Annotated[str, StringConstraints(pattern=r"^https://\S{1,2040}$")] | None = None
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,256}$")] | None = None
    caption: str | None = Field(None, max_length=1024)
    filename: str | None = Field(None, max_length=240)
    mime_type: (
        Annotated[str, StringConstraints(pattern=r"^[\w.+-]{1,64}/[\w.+-]{1,128}$")] | None
    ) = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.link is None) == (self.id is None):
            raise ValueError("media needs exactly one of link or id")
        if self.type is None and self.mime_type is None:
            raise ValueError("media needs a type (or a mime_type)")
        return self

    @property
    def kind(self) -> MediaType:
        """The media type, from `type` or derived from `mime_type`."""
        if self.type is not None:
            return self.type
        major = str(self.mime_type).split("/", 1)[0]
        if major in ("image", "video", "audio"):
            return major  # type: ignore[return-value]
        return "document"


OPERATOR_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")


class TemplateLanguage(BaseModel):
    """A template's language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(_[A-Za-z]{2,4})?$")]


class TemplateIn(BaseModel):
    """A WhatsApp message template (allowed outside the 24-hour window)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,512}$")]
    language: TemplateLanguage
    components: list[dict[str, Any]] = Field(default_factory=list, max_length=20)

    @field_validator("components")
    @classmethod
    def _sendable(cls, components: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Components WhatsApp can take as JSON: free-form, so checked here, or a lone
        surrogate (`"\\ud800"`) failed the event's serialisation with a 500, and NaN,
        infinities and NUL went out as null and `\\u0000`."""
        try:
            text = json.dumps(components, allow_nan=False, ensure_ascii=False)
            text.encode("utf-8")
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"components are not JSON that WhatsApp can take: {exc}") from None
        if "\\u0000" in text:
            raise ValueError("components must not contain NUL characters")
        return components


class OperatorMessageIn(CustomerRef):
    """A message from the operator: text, media (with optional caption) or a template."""

    text: str | None = Field(None, min_length=1, max_length=16_384)
    message: str | None = Field(
        None, min_length=1, max_length=16_384, description="compatibility alias of `text`"
    )
    media: MediaIn | None = None
    template: TemplateIn | None = None
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="the client's id for this message (or the `Idempotency-Key` header): a "
        "request repeated with the same one (a retry after a timeout) is answered with the "
        "first one's command id and sends nothing again",
    )

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        if self.template is not None and (self.body or self.media):
            raise ValueError("a template cannot be combined with text or media")
        if self.template is None and not (self.body or self.media):
            raise ValueError("text (or message), media or template is required")
        return self

    @property
    def body(self) -> str | None:
        """The text, from either field."""
        return self.text or self.message


class ConversationOut(BaseModel):
    """A conversation in the queue."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    wa_id: str
    phone_number_id: str
    customer_name: str | None
    mode: str
    epoch: int
    needs_attention: bool
    operator: str | None
    mode_reason: str | None
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    waiting_since: datetime | None
    updated_at: datetime
    window_closes_at: datetime | None = Field(
        None,
        description="free-form messages are allowed until then (the customer-service window "
        "after their last message); later, or null, only templates",
    )

    @classmethod
    def of(cls, row: Any, window_hours: float) -> ConversationOut:
        """A conversation row, with its customer-service window's end."""
        out = cls.model_validate(row)
        out.window_closes_at = window_end(out.last_inbound_at, window_hours)
        return out


def window_end(last_inbound_at: datetime | None, window_hours: float) -> datetime | None:
    """Until when free-form messages may be sent: the customer's last message plus the
    window; None when they never wrote (templates only)."""
    return None if last_inbound_at is None else last_inbound_at + timedelta(hours=window_hours)


class ConversationPage(BaseModel):
    """Conversations, longest waiting first."""

    items: list[ConversationOut]


class MediaOut(BaseModel):
    """A customer's attachment and its download: fetch the bytes from `url` once `status` is
    `downloaded`; `failed` is final and `reason` says why; `expired`: the bytes were deleted
    after the retention period (`OPERATOR_API_MEDIA_RETENTION_DAYS`)."""

    id: str = Field(description="WhatsApp media id")
    type: str = Field(description="image, audio, video, document or sticker")
    voice: bool = Field(description="a recorded voice note")
    status: Literal["pending", "downloading", "downloaded", "failed", "expired"]
    reason: str | None = Field(description="why the last try failed, or why it is `failed`")
    mime_type: str | None
    filename: str | None
    size: int | None = Field(description="bytes, once downloaded")
    url: str = Field(description="path of `GET /api/v1/media/{media_id}`")


class MessageOut(BaseModel):
    """One message of a transcript."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    direction: Literal["in", "out"]
    author: str
    kind: str
    text: str | None
    status: str | None
    reason: str | None = Field(description="machine-readable: window_closed, rejected, fenced...")
    error_code: int | None = Field(None, description="WhatsApp's error code, when it gave one")
    error: str | None = Field(None, description="why it failed or was not sent, in words")
    operator: str | None
    wa_message_id: str | None
    command_id: str | None
    occurred_at: datetime
    media: MediaOut | None = Field(None, description="the customer's attachment, if any")

    @classmethod
    def from_row(cls, row: Any) -> MessageOut:
        """A transcript row (`transcript.page`) with its media columns."""
        out = cls.model_validate(row)
        if row.media_id is not None and row.media_status is not None:
            out.media = MediaOut(
                id=row.media_id,
                type=row.media_kind,
                voice=row.media_voice,
                status=row.media_status,
                reason=row.media_reason,
                mime_type=row.media_mime_type,
                filename=row.media_filename,
                size=row.media_size,
                url=f"/api/v1/media/{row.media_id}",
            )
        return out


class MessagePage(BaseModel):
    """A page of a transcript, oldest message first; pass `next_after` as `after` for the next
    (newer) page, or, when paging back from the newest, `next_before` as `before` for the
    previous (older) one. Null: there is no such page now."""

    items: list[MessageOut]
    next_after: int | None
    next_before: int | None = None


class CommandAccepted(BaseModel):
    """An operator message accepted for sending."""

    command_id: str
    conversation_id: str
    status: Literal["accepted"] = "accepted"


class OperatorIn(BaseModel):
    """A new operator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=OPERATOR_NAME.pattern)]
    role: Literal["admin", "operator"] = "operator"


class OperatorCreated(BaseModel):
    """A created operator and its token, shown once."""

    name: str
    role: str
    token: str


class OperatorOut(BaseModel):
    """An operator."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    role: str
    active: bool
