"""transformers backend: one model in memory, chats batched by length with left padding.

A LoRA adapter is loaded unmerged (PeftModel.from_pretrained), exactly as trained; prompts are rendered with
the tokenizer's own chat template. Only safetensors weights are read, and remote code is off by default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from eat.chat import render, use_chat_template
from eat.errors import UserError
from eat.models import resolve_device, resolve_dtype
from evaluation.backends.base import Chat

log = logging.getLogger(__name__)


def _cache_keyword(model) -> str:
    """The name under which this transformers release takes and returns the KV cache: `cache` (5.2x and
    later; `past_key_values` is deprecated there) or `past_key_values` (earlier releases)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def generation_kwargs(decoding: dict, max_new_tokens: int) -> dict:
    """transformers `generate` kwargs for a decoding dict (greedy unless do_sample)."""
    kwargs: dict = {"max_new_tokens": max_new_tokens, "do_sample": bool(decoding.get("do_sample"))}
    if kwargs["do_sample"]:
        for key in ("temperature", "top_p", "top_k", "repetition_penalty"):
            if key in decoding:
                kwargs[key] = decoding[key]
    else:
        # Override sampling defaults a model's generation_config may carry, so greedy means greedy.
        kwargs.update(temperature=None, top_p=None, top_k=None)
        if "repetition_penalty" in decoding:
            kwargs["repetition_penalty"] = decoding["repetition_penalty"]
    return kwargs


@dataclass
class _Kept:
    """One chat's tokens so far (prompt and reply) and their KV per layer, [kv_heads, tokens, head_dim]."""

    ids: list[int]
    kv: list[tuple]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        batch_size: int = 16,
        device: str | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        reuse_kv: bool = True,
        kv_reuse_bytes: int = 2 * 1024**3,
        chat_template: str | None = None,
        merge_adapter: bool = True,
        base_too: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.batch_size = batch_size
        self.chunk_size = batch_size * 8  # chats per pipeline chunk: enough to sort by length, cached after
        self.device = resolve_device(device)
        if Path(model).exists() and not (Path(model) / "config.json").is_file():
            raise UserError("not a model folder (no config.json)", path=model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            self.model = AutoModelForCausalLM.from_pretrained(
                model,
                dtype=resolve_dtype(dtype, self.device),
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
            )
        except (
            OSError,
            ValueError,
        ) as exc:  # ValueError: custom code without trust_remote_code, other family
            raise UserError(f"cannot load model: {str(exc).splitlines()[0]}", path=model) from None
        if adapter is not None:
            from peft import PeftModel

            from eat.models import check_adapter_folder

            check_adapter_folder(adapter)
            try:
                self.model = PeftModel.from_pretrained(self.model, adapter, is_trainable=False)
            except (KeyError, ValueError, TypeError, RuntimeError) as exc:
                reason = " ".join(str(exc).split())[:200]
                raise UserError(f"cannot load the adapter onto {model} ({reason})", path=adapter) from None
            if merge_adapter and not base_too:
                # W + BA folded once: the same function, without a LoRA detour in every linear layer per
                # token (measured on CPU: an unmerged 0.5B adapter took 2.9x the base model's time).
                self.model = self.model.merge_and_unload()
        # Calls with adapter=False run the base model: the PEFT model is kept, with its adapter disabled for
        # them; with merge_adapter it is merged in place for the adapter's calls (the pipeline's stages run
        # base first, then align, so one merge per run; unmerging again is exact only up to rounding).
        self._peft = adapter is not None and base_too
        self._merged_for_good = adapter is not None and not base_too
        self._merge = merge_adapter
        self._merged = False
        self._side: bool | None = None  # adapter on or off in the last call
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        use_chat_template(self.tokenizer, chat_template, model, "--chat-template ")
        self.stop_ids = self._stop_ids()
        if self.tokenizer.pad_token is None:
            # Some tokenizers ship without one (Llama-family); padding is masked, any id the model knows works.
            self.tokenizer.pad_token_id = self.stop_ids[0]
        self._torch = torch
        self._cache_kw = _cache_keyword(self.model)
        # KV of each chat's last turn, kept until the next `generate` call (the pipeline runs all turns of
        # a chunk of chats back to back), at most kv_reuse_bytes; only for plain (non-sliding) caches.
        self.kv_reuse_bytes = kv_reuse_bytes
        self.pad_tolerance = 0.9  # a prefill group holds prompts at least this fraction of its longest
        self._kv: dict[str, _Kept] = {}
        self._kv_bytes = 0
        self.reuse_kv = reuse_kv and self._plain_cache()
        # How many prompt tokens came from the previous turn's KV, or from an opening shared by a batch.
        self.stats = {"prompt_tokens": 0, "reused_tokens": 0, "shared_tokens": 0}

    def _plain_cache(self) -> bool:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        try:
            layers = DynamicCache(config=self.model.config).layers
        except Exception:  # an architecture this check does not understand: no reuse
            return False
        self._layers = len(layers)
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    def close(self) -> None:
        """Drop the KV kept for the next turn (the model itself goes with the backend)."""
        self._kv.clear()
        self._kv_bytes = 0

    def render(self, chat: Chat) -> str:
        return render(self.tokenizer, chat, generation_prompt=True)

    def _stop_ids(self) -> list[int]:
        """Every token that ends a reply: generation_config's EOS (an int or a list), the tokenizer's EOS, and
        the token the chat template closes an assistant turn with (a converted or base checkpoint often
        names only <|endoftext|> as EOS while the chat model ends its turns with <|im_end|>)."""
        ids: list[int] = []
        eos = self.model.generation_config.eos_token_id
        ids += [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        try:
            marker = "eat-ner end probe"
            text = render(
                self.tokenizer,
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}],
                generation_prompt=False,
            )
            after = text[text.rindex(marker) + len(marker) :]
            first = self.tokenizer(after.strip(), add_special_tokens=False)["input_ids"][:1]
            if first and first[0] in self.tokenizer.all_special_ids:
                ids += first
        except (ValueError, KeyError, TypeError):  # a template that drops or reorders the message
            pass
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise UserError("neither generation_config nor the tokenizer names an end-of-sequence token")
        return ids

    def _previous_prompt(self, chat: Chat) -> str | None:
        """The prompt the previous turn of this chat was generated from (chat minus the last reply and
        user turn), or None for a first turn: the key its KV cache was kept under."""
        if len(chat) >= 3 and chat[-2].get("role") == "assistant":
            return self.render(chat[:-2])
        return None

    def _use_adapter(self, on: bool):
        """A context in which the kept PEFT model runs with its adapter or without it."""
        from contextlib import nullcontext

        if self._merge and on != self._merged:
            if on:
                self.model.merge_adapter()
            else:
                self.model.unmerge_adapter()
            self._merged = on
        return nullcontext() if on else self.model.disable_adapter()

    def generate(
        self, chats: list[Chat], max_new_tokens: int, decoding: dict, adapter: bool = True
    ) -> list[str]:
        if not self._peft:
            if not adapter and self._merged_for_good:
                raise UserError(
                    "this hf backend merged its adapter for every stage (base_too=False); "
                    "make it with base_too=True to run some stages on the base model"
                )
            return self._generate(chats, max_new_tokens, decoding)
        if self._side is not None and self._side != adapter:
            self.close()  # the KV kept from the last call was computed with the other weights
        self._side = adapter
        with self._use_adapter(adapter):
            return self._generate(chats, max_new_tokens, decoding)

    def _generate(self, chats: list[Chat], max_new_tokens: int, decoding: dict) -> list[str]:
        torch = self._torch
        texts = [self.render(chat) for chat in chats]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        kwargs = generation_kwargs(decoding, max_new_tokens)
        if kwargs["do_sample"]:
            torch.manual_seed(int(decoding.get("seed", 0)))
        out: list[str] = [""] * len(chats)
        if not self.reuse_kv:
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
            for b in range(0, len(order), self.batch_size):
                idx = order[b : b + self.batch_size]
                new = self._generate_padded([ids[i] for i in idx], kwargs)
                self._decode_into(out, idx, new)
            return out
        # Reuse the KV of each chat's previous turn (kept from the last call) for the longest token prefix
        # it shares with this prompt.
        previous, self._kv, self._kv_bytes = self._kv, {}, 0
        kept: list[_Kept | None] = [None] * len(chats)
        for i, chat in enumerate(chats):
            key = self._previous_prompt(chat) if previous else None
            entry = previous.pop(key, None) if key is not None else None
            if entry is not None:
                n = min(_common_prefix(entry.ids, ids[i]), len(ids[i]) - 1)
                kept[i] = _Kept(ids[i][:n], [(k[:, :n], v[:, :n]) for k, v in entry.kv]) if n else None
                self.stats["reused_tokens"] += n
        self.stats["prompt_tokens"] += sum(len(x) for x in ids)
        del previous
        # Chats with nothing kept (first turns) mostly share their opening (system prompt, instruction):
        # its KV is computed once and every such chat starts from it.
        fresh = [i for i in range(len(chats)) if kept[i] is None]
        if len(fresh) > 1:
            n = min(len(ids[i]) for i in fresh) - 1
            for i in fresh[1:]:
                n = min(n, _common_prefix(ids[fresh[0]][:n], ids[i]))
            if n >= 8:
                shared = self._prefill([ids[fresh[0]][: n + 1]], [None])[0]
                for i in fresh:
                    kept[i] = shared
                self.stats["shared_tokens"] += n * len(fresh)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            prefixes = self._prefill([ids[i] for i in idx], [kept[i] for i in idx])
            new = self._generate_cached([ids[i] for i in idx], prefixes, [texts[i] for i in idx], kwargs)
            self._decode_into(out, idx, new)
        return out

    def _decode_into(self, out: list[str], idx: list[int], new) -> None:
        for i, text in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
            out[i] = text.strip()

    def _generate_padded(self, ids: list[list[int]], kwargs: dict):
        """Plain left-padded batched `generate` (the reference path). Returns the generated token ids."""
        batch = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with self._torch.inference_mode():
            gen = self.model.generate(
                **batch, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids, **kwargs
            )
        return gen[:, batch["input_ids"].shape[1] :]

    def _layout(self, prefix_lens: list[int], parts: list[list[int]]):
        """Rows laid out as [pad | cached prefix | pad | new tokens]. The mask hides both pads and position
        ids come from its cumulative sum, so each real token sees exactly what it would see alone."""
        torch = self._torch
        rows, p, q = len(parts), max(prefix_lens), max(len(x) for x in parts)
        input_ids = torch.full((rows, p + q), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((rows, p + q), dtype=torch.long)
        for r, (n, part) in enumerate(zip(prefix_lens, parts, strict=True)):
            mask[r, p - n : p] = 1
            input_ids[r, p + q - len(part) :] = torch.tensor(part, dtype=torch.long)
            mask[r, p + q - len(part) :] = 1
        return input_ids.to(self.device), mask.to(self.device), p

    def _batch_cache(self, prefixes: list[_Kept | None], p: int):
        """A DynamicCache of `p` columns holding each row's prefix KV right-aligned (zeros under pads)."""
        from transformers import DynamicCache

        torch = self._torch
        if p == 0:
            return DynamicCache()
        ref = next(x for x in prefixes if x is not None and x.ids).kv
        data = []
        for layer in range(len(ref)):
            k0 = ref[layer][0]
            shape = (len(prefixes), k0.shape[0], p, k0.shape[2])
            k = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
            v = torch.zeros(shape, dtype=k0.dtype, device=k0.device)
            for r, x in enumerate(prefixes):
                n = len(x.ids) if x is not None else 0
                if n:
                    k[r, :, p - n :] = x.kv[layer][0]
                    v[r, :, p - n :] = x.kv[layer][1]
            data.append((k, v))
        return DynamicCache(ddp_cache_data=data)

    @staticmethod
    def _rows_kv(cache, real, length: int) -> list[list[tuple]]:
        """Per row, the KV of its real tokens among the first `length` cache columns."""
        out = []
        for r in range(real.shape[0]):
            cols = real[r, :length].nonzero().squeeze(-1)
            out.append(
                [
                    (lay.keys[r].index_select(1, cols), lay.values[r].index_select(1, cols))
                    for lay in cache.layers
                ]
            )
        return out

    def _prefill(self, ids: list[list[int]], kept: list[_Kept | None]) -> list[_Kept]:
        """KV of every prompt but its last token, computed apart from decoding in groups of similar length
        (so padding costs little), on top of any reused prefix."""
        torch = self._torch
        todo = [
            (len(x) - 1 - (len(k.ids) if k else 0), r) for r, (x, k) in enumerate(zip(ids, kept, strict=True))
        ]
        todo = sorted((t for t in todo if t[0] > 0), reverse=True)
        result: list[_Kept] = [k if k is not None else _Kept([], []) for k in kept]
        g = 0
        while g < len(todo):
            longest = todo[g][0]
            end = g + 1
            while end < len(todo) and todo[end][0] >= self.pad_tolerance * longest:
                end += 1
            group = [r for _, r in todo[g:end]]
            g = end
            prefixes = [kept[r] for r in group]
            starts = [len(k.ids) if k else 0 for k in prefixes]
            parts = [ids[r][s:-1] for r, s in zip(group, starts, strict=True)]
            input_ids, mask, p = self._layout(starts, parts)
            cache = self._batch_cache(prefixes, p)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                self.model(
                    input_ids=input_ids[:, p:],
                    attention_mask=mask,
                    position_ids=position_ids[:, p:],
                    **{self._cache_kw: cache},
                    use_cache=True,
                    logits_to_keep=1,
                )
            for r, kv in zip(group, self._rows_kv(cache, mask.bool(), mask.shape[1]), strict=True):
                result[r] = _Kept(ids[r][:-1], kv)
        return result

    def _generate_cached(self, ids, prefixes: list[_Kept], texts: list[str], kwargs: dict):
        """Batched `generate` from each row's prefix KV plus its last prompt token; keeps every row's tokens
        and KV (pads dropped, cut after the first EOS) for the chat's next turn."""
        torch = self._torch
        input_ids, mask, p = self._layout([len(x.ids) for x in prefixes], [[x[-1]] for x in ids])
        for r, x in enumerate(prefixes):
            if x.ids:
                input_ids[r, p - len(x.ids) : p] = torch.tensor(x.ids, dtype=torch.long)
        cache = self._batch_cache(prefixes, p)
        if not kwargs["do_sample"] and kwargs.get("repetition_penalty") in (None, 1.0):
            return self._greedy_shrinking(input_ids, mask, p, cache, texts, kwargs["max_new_tokens"])
        with torch.inference_mode():
            gen = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                **{self._cache_kw: cache},
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.stop_ids,
                return_dict_in_generate=True,
                **kwargs,
            )
        seqs = gen.sequences
        new = seqs[:, p + 1 :]
        cache = getattr(gen, self._cache_kw)
        length = cache.get_seq_length()  # the last generated token was never fed back
        eos_ids = self.stop_ids
        eos = torch.isin(new, torch.tensor(eos_ids, dtype=torch.long, device=new.device)).long()
        after_eos = (eos.cumsum(-1) - eos) > 0
        real = torch.cat([mask.bool(), ~after_eos], dim=1)
        for r, kv in enumerate(self._rows_kv(cache, real, length)):
            self._keep(texts[r], seqs[r, :length][real[r, :length]].tolist(), kv)
        return new

    def _keep(self, text: str, ids: list[int], kv: list[tuple]) -> None:
        """Keep one chat's tokens and KV for its next turn, within the byte budget."""
        size = sum(k.numel() * k.element_size() * 2 for k, _ in kv)
        if self._kv_bytes + size <= self.kv_reuse_bytes:
            self._kv[text] = _Kept(ids, kv)
            self._kv_bytes += size

    def _greedy_shrinking(self, input_ids, mask, p: int, cache, texts: list[str], max_new_tokens: int):
        """Greedy decoding that drops each row from the batch as soon as it ends.

        `generate` keeps computing finished rows until the longest reply ends; on a CPU, where a row costs
        the same whether its reply is over or not, short replies batched with one long reply paid for its
        whole length (a 0.5B model's replies vary from 5 to 192 tokens). Greedy tokens are the same as
        `generate`'s (tests/evaluation/test_hf_kv_reuse.py). Each row's tokens and KV are kept when it ends.
        """
        torch = self._torch
        rows = list(range(input_ids.shape[0]))  # original row of each batch row
        out: list[list[int]] = [[] for _ in rows]
        stop = torch.tensor(self.stop_ids, dtype=torch.long, device=input_ids.device)
        positions = mask.cumsum(-1) - 1
        step_ids, step_pos = input_ids[:, p:], positions[:, p:]
        seen = input_ids  # every token fed so far, per batch row (pads included, masked)
        with torch.inference_mode():
            for step in range(max_new_tokens):
                logits = self.model(
                    input_ids=step_ids,
                    attention_mask=mask,
                    position_ids=step_pos,
                    **{self._cache_kw: cache},
                    use_cache=True,
                    logits_to_keep=1,
                ).logits[:, -1]
                nxt = logits.argmax(-1)
                ended = torch.isin(nxt, stop) | (step + 1 == max_new_tokens)
                for b, r in enumerate(rows):
                    out[r].append(int(nxt[b]))
                if bool(ended.any()):
                    real = mask.bool()
                    for b in ended.nonzero().squeeze(-1).tolist():
                        cols = real[b].nonzero().squeeze(-1)
                        kv = [
                            (lay.keys[b].index_select(1, cols), lay.values[b].index_select(1, cols))
                            for lay in cache.layers
                        ]
                        self._keep(texts[rows[b]], seen[b][cols].tolist(), kv)
                    keep = (~ended).nonzero().squeeze(-1)
                    if keep.numel() == 0:
                        break
                    for layer in cache.layers:
                        layer.batch_select_indices(keep)
                    rows = [rows[b] for b in keep.tolist()]
                    nxt, mask, seen = nxt[keep], mask[keep], seen[keep]
                    step_pos = step_pos[keep]
                step_ids = nxt[:, None]
                step_pos = step_pos[:, -1:] + 1
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                seen = torch.cat([seen, step_ids], dim=1)
        return out
