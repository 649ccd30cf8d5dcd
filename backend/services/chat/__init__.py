"""Conversations with the AI tutor: ownership, history, sending messages, usage and the daily budget.

`conversations` is the CRUD of conversations and their messages; `turns` sends a message (the
student's message stored, the LLM asked, the reply stored); `stream` relays a reply as it is written;
`export` is the user's data export.

A message is sent in two steps so that no transaction is open while the LLM thinks: `start_turn`
stores the student's message and commits (it must survive an LLM failure, and on SQLite an open write
transaction would lock the database for everyone); the reply is then stored by the request
(`send`, non-streamed) or, for a stream, by `stream_turn` through short sessions of its own, because
the request's session is gone before the first byte of a streamed response is sent.
"""

from __future__ import annotations

from backend.services.chat.conversations import (
    ConversationNotFound,
    SubmissionNotFound,
    create_conversation,
    delete_conversation,
    get_owned,
    list_conversations,
    list_messages,
    rename_conversation,
    title_from,
)
from backend.services.chat.export import export_conversations, export_llm_usage
from backend.services.chat.stream import Delta, Done, Failed, Started, StreamEvent, stream_turn
from backend.services.chat.turns import (
    REPLY_NOT_SAVED,
    LLMFailed,
    LLMTimedOut,
    ReplyNotSaved,
    Turn,
    as_app_error,
    send,
    send_shortcut,
    start_turn,
)

__all__ = [
    "REPLY_NOT_SAVED",
    "ConversationNotFound",
    "Delta",
    "Done",
    "Failed",
    "LLMFailed",
    "LLMTimedOut",
    "ReplyNotSaved",
    "Started",
    "StreamEvent",
    "SubmissionNotFound",
    "Turn",
    "as_app_error",
    "create_conversation",
    "delete_conversation",
    "export_conversations",
    "export_llm_usage",
    "get_owned",
    "list_conversations",
    "list_messages",
    "rename_conversation",
    "send",
    "send_shortcut",
    "start_turn",
    "stream_turn",
    "title_from",
]
