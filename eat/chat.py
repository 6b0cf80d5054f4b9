"""Rendering chats with a model's own chat template, whatever its family.

Templates differ in ways that break a fixed chat: some have no system role (Gemma's raises "System role not
supported", others silently drop it), and Qwen2.5's adds its default system prompt when a chat has none.
Training (`training.sft_data`) and inference (`evaluation.backends.hf`) render through `render`, so a chat
is folded the same way on both sides and a model is asked exactly as it was trained.
"""

from __future__ import annotations

from pathlib import Path

from eat.errors import UserError

_PROBE_SYSTEM = "eat-ner system probe 7f3a"


def accepts_system(tokenizer) -> bool:
    """Whether the template renders a system message (checked once per tokenizer, then remembered)."""
    known = getattr(tokenizer, "_eat_accepts_system", None)
    if known is not None:
        return known
    probe = [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": "hello"}]
    try:
        text = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
        ok = _PROBE_SYSTEM in text
    except Exception:  # jinja's raise_exception, e.g. "System role not supported"
        ok = False
    tokenizer._eat_accepts_system = ok
    return ok


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """System messages joined into the first user message, for templates without a system role."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if system:
        first = next((m for m in rest if m.get("role") == "user"), None)
        if first is None:
            rest.insert(0, {"role": "user", "content": system})
        else:
            first["content"] = f"{system}\n\n{first['content']}"
    return rest


def render(tokenizer, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    """The chat as text in the tokenizer's template, system text folded where the template has no role."""
    if any(m.get("role") == "system" for m in messages) and not accepts_system(tokenizer):
        messages = fold_system(messages)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def use_chat_template(tokenizer, template: str | None, model: str, flag: str, required: bool = True) -> None:
    """Install a template file on the tokenizer if given; refuse a tokenizer left without one (`required`)."""
    if template:
        path = Path(template)
        if not path.is_file():
            raise UserError("chat template file not found", path=path)
        try:
            tokenizer.chat_template = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read the chat template ({exc})", path=path) from None
        tokenizer._eat_accepts_system = None
    if required and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"the tokenizer has no chat template (a base model, or a folder without chat_template.jinja or "
            f"tokenizer_config.json's chat_template); pass one with {flag}FILE.jinja",
            path=model,
        )
