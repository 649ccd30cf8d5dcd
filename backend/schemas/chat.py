from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from backend.schemas.common import ErrorCode, Id, Page
from backend.schemas.users import STRIP_HTML

MAX_MESSAGE_CHARS = 5000
DEFAULT_TITLE = "New conversation"


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("Must contain something other than whitespace")
    return value


Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S"), STRIP_HTML]  # like a name
# Verbatim (it carries code), but not blank: the schema states that as a pattern.
MessageText = Annotated[
    str,
    Field(min_length=1, max_length=MAX_MESSAGE_CHARS, json_schema_extra={"pattern": r"\S"}),
    AfterValidator(_not_blank),
]


class ConversationCreate(BaseModel):
    title: Title | None = Field(None, description="Omit it to name the conversation after its first message.")
    exercise_id: Id | None = Field(
        None,
        description="Makes it an exercise conversation: the tutor sees the exercise, your latest submission "
        "for it and the hints you were given. 404 for an exercise you cannot see.",
    )
    submission_id: Id | None = Field(
        None,
        description='Start from one of your submissions ("why did this fail?"): an exercise conversation about '
        "that submission's exercise, in which the tutor discusses that submission. 404 for anyone else's; "
        "422 when `exercise_id` is given too and differs.",
    )


class ConversationUpdate(BaseModel):
    title: Title


class ConversationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    context_type: Literal["general", "exercise"]
    exercise_id: int | None
    submission_id: int | None = Field(None, description="The submission the conversation was started from.")
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None

    @field_validator("title", mode="before")
    @classmethod
    def _default_title(cls, title: str | None) -> str:
        return title or DEFAULT_TITLE


class ConversationList(Page[ConversationRead]):
    model_config = ConfigDict(title="ConversationPage")  # named like every other page in the document


class MessageRead(BaseModel):
    """One message of a conversation: yours (`user`) or the tutor's (`assistant`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    role: Literal["user", "assistant"]
    content: str
    model: str | None = Field(description="Who answered (`offline` without an LLM); null on user messages.")
    tokens_used: int
    status: Literal["complete", "partial", "failed"]
    created_at: datetime


class MessageList(BaseModel):
    items: list[MessageRead] = Field(description="Oldest first.")
    has_more: bool = Field(description="Older messages exist: ask again with `before_id` = the first item's id.")


class MessagesQuery(BaseModel):
    limit: int = Field(50, ge=1, le=100)
    before_id: Id | None = None


class MessageCreate(BaseModel):
    content: MessageText
    # The original way to ask for a stream (as does `Accept: text/event-stream`), kept for the SPA. Left out
    # of the document: the typed operation for a stream is `stream_message` (docs/API.md, "Streaming").
    stream: SkipJsonSchema[bool] = False


class MessagePair(BaseModel):
    user_message: MessageRead
    assistant_message: MessageRead


class ShortcutMessage(BaseModel):
    message: MessageText
    conversation_id: Id | None = Field(None, description="Omit it to start a new conversation.")


class ShortcutReply(BaseModel):
    conversation_id: int
    message_id: int = Field(description="The assistant message's id.")
    response: str
    model: str | None
    tokens_used: int


# --- the events of a streamed reply (`text/event-stream`) -----------------------------------------
# Each event is one SSE frame: `event: <name>` and `data: <the JSON object below>`.


class StreamStarted(BaseModel):
    user_message_id: int = Field(description="Your message, already stored.")
    assistant_message_id: int = Field(description="The reply being written (status `partial` until `done`).")


class StreamDelta(BaseModel):
    content: str = Field(description="The next piece of the reply's text.")


class StreamDone(BaseModel):
    assistant_message: MessageRead


class StreamError(BaseModel):
    code: ErrorCode = Field(description="As in problem details: `llm_error`, `llm_timeout`, `internal_error`, …")
    detail: str


class StartEvent(BaseModel):
    event: Literal["start"]
    data: StreamStarted


class DeltaEvent(BaseModel):
    event: Literal["delta"]
    data: StreamDelta


class DoneEvent(BaseModel):
    event: Literal["done"]
    data: StreamDone


class ErrorEvent(BaseModel):
    event: Literal["error"]
    data: StreamError


AnyStreamEvent = Annotated[StartEvent | DeltaEvent | DoneEvent | ErrorEvent, Field(discriminator="event")]


class ChatStreamEvent(RootModel[AnyStreamEvent]):
    """One event of a streamed reply: `start` once, `delta` any number of times, then `done` or `error`.

    On the wire `event` is the SSE event name and `data` its JSON payload."""
