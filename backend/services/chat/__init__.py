"""Conversations with the AI tutor: ownership, history, sending messages, usage and the daily budget.

`conversations` is the CRUD of conversations; `reads` lists them and their messages; `turns` sends a message (the
student's message stored, the LLM asked, the reply stored); `stream` relays a reply as it is written;
`export` is the user's data export.

No transaction is open while the LLM thinks: one read decides whether the message may be sent and
builds the prompt; the LLM is asked; the student's message is committed in a short transaction of its
own while the LLM starts (it must survive an LLM failure, and on SQLite an open write transaction would
lock the database for everyone); the reply is stored by `send` (non-streamed) or, for a stream, by
`stream_turn`, each in short sessions of their own (turns.py and stream.py say more).
"""

from __future__ import annotations

from backend.services.chat.conversations import (
    ConversationNotFound,
    SubmissionNotFound,
    create_conversation,
    delete_conversation,
    get_owned,
    rename_conversation,
    title_from,
)
from backend.services.chat.export import export_conversations, export_llm_usage
from backend.services.chat.reads import conversation_page, message_page
from backend.services.chat.stream import Delta, Done, Failed, Started, StreamEvent, Turn, start_stream, stream_turn
from backend.services.chat.turns import (
    REPLY_NOT_SAVED,
    LLMFailed,
    LLMTimedOut,
    Prepared,
    ReplyNotSaved,
    as_app_error,
    open_for_shortcut,
    prepare_turn,
    send,
)

__all__ = [
    "REPLY_NOT_SAVED",
    "ConversationNotFound",
    "Delta",
    "Done",
    "Failed",
    "LLMFailed",
    "LLMTimedOut",
    "Prepared",
    "ReplyNotSaved",
    "Started",
    "StreamEvent",
    "SubmissionNotFound",
    "Turn",
    "as_app_error",
    "conversation_page",
    "create_conversation",
    "delete_conversation",
    "export_conversations",
    "export_llm_usage",
    "get_owned",
    "message_page",
    "open_for_shortcut",
    "prepare_turn",
    "rename_conversation",
    "send",
    "start_stream",
    "stream_turn",
    "title_from",
]
