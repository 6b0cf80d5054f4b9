"""A fake backend for tests: answers come from a dict keyed by the last user message (or a function)."""

from __future__ import annotations

from collections.abc import Callable

from evaluation.backends import Chat


class ScriptedBackend:
    """Replies with `answers[last user message]`, else `default`; counts calls and chats seen.

    `answers` may also be a function of the whole chat, for answers that depend on earlier turns.
    """

    name = "scripted"

    def __init__(self, answers: dict[str, str] | Callable[[Chat], str], default: str = "") -> None:
        self.answers = answers
        self.default = default
        self.calls = 0
        self.chats: list[Chat] = []

    def answer(self, chat: Chat) -> str:
        if callable(self.answers):
            return self.answers(chat)
        last = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
        return self.answers.get(last, self.default)

    def generate(self, chats: list[Chat], max_new_tokens: int, decoding: dict) -> list[str]:
        self.calls += 1
        self.chats.extend(chats)
        return [self.answer(chat) for chat in chats]
