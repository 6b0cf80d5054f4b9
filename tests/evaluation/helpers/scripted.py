"""A fake backend for tests: answers come from a dict keyed by user messages (or a function).

Lookup: the last user message first, then earlier ones (later turns of a chat often repeat a fixed
instruction, so the turn that names the sentence identifies the chat). A list value answers turn by turn,
indexed by the number of assistant replies after the matched message.
"""

from __future__ import annotations

from collections.abc import Callable

from evaluation.backends.base import Chat


class ScriptedBackend:
    name = "scripted"
    chunk_size = 1024

    def __init__(
        self, answers: dict[str, str | list[str]] | Callable[[Chat], str], default: str = ""
    ) -> None:
        self.answers = answers
        self.default = default
        self.calls = 0  # generate calls
        self.chats: list[Chat] = []  # every chat sent
        self.adapter_calls: list[bool] = []  # `adapter` of each generate call

    def answer(self, chat: Chat) -> str:
        if callable(self.answers):
            return self.answers(chat)
        for i in range(len(chat) - 1, -1, -1):
            message = chat[i]
            if message["role"] != "user" or message["content"] not in self.answers:
                continue
            value = self.answers[message["content"]]
            if isinstance(value, list):
                turn = sum(m["role"] == "assistant" for m in chat[i + 1 :])
                return value[turn] if turn < len(value) else self.default
            return value
        return self.default

    def generate(
        self, chats: list[Chat], max_new_tokens: int, decoding: dict, adapter: bool = True
    ) -> list[str]:
        self.calls += 1
        self.adapter_calls.append(adapter)
        self.chats.extend(chats)
        return [self.answer(chat) for chat in chats]

    def close(self) -> None:
        """Nothing to release."""
