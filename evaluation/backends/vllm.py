"""vLLM offline engine (optional extra): LoRA adapters served unmerged, prefix caching for the shared preambles."""

from __future__ import annotations

from eat.errors import UserError
from evaluation.backends.base import Chat


class VLLMBackend:
    name = "vllm"
    chunk_size = 256  # chats per pipeline chunk; vLLM schedules within it

    def __init__(
        self, model: str, adapter: str | None = None, seed: int = 0, trust_remote_code: bool = False
    ):
        try:
            from vllm import LLM
        except ImportError:
            raise UserError("backend vllm needs vLLM: pip install eat-ner[vllm]") from None
        self.llm = LLM(
            model=model,
            enable_lora=adapter is not None,
            enable_prefix_caching=True,  # every chat of a stage shares its preamble
            max_lora_rank=64,
            seed=seed,
            trust_remote_code=trust_remote_code,
        )
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, adapter)

    def generate(
        self, chats: list[Chat], max_new_tokens: int, decoding: dict, adapter: bool = True
    ) -> list[str]:
        from vllm import SamplingParams

        if decoding.get("do_sample"):
            params = SamplingParams(
                max_tokens=max_new_tokens,
                temperature=decoding.get("temperature", 1.0),
                top_p=decoding.get("top_p", 1.0),
                top_k=decoding.get("top_k", -1),
                repetition_penalty=decoding.get("repetition_penalty", 1.0),
                seed=decoding.get("seed"),
            )
        else:
            params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0)
        outputs = self.llm.chat(chats, params, lora_request=self.lora if adapter else None, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]

    def close(self) -> None:
        """Nothing to release before the engine itself goes."""
