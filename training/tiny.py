"""Tiny random-weight models for offline tests and the demo.

Nothing can be downloaded on CI, yet the real loading path (`from_pretrained(path)`) must be exercised.
These builders write a Qwen2-architecture causal LM and a T5 seq2seq model (~1-2M parameters each) with a
byte-level BPE tokenizer trained in seconds, saved as safetensors, so they load exactly like a hub model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# Our ChatML template. For plain system/user/assistant turns it renders the same text as Qwen2.5's, but it
# adds no default system prompt, and it marks assistant content with {% generation %} so that
# `apply_chat_template(..., return_assistant_tokens_mask=True)` works.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CHATML_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
T5_SPECIAL = ["<pad>", "</s>", "<unk>"]

# Our own sample sentences in the scripts the toolkit targets; the tokenizer must cover all of them.
SAMPLE_TEXT = [
    "The quick translation of a sentence keeps every name: Tokyo, Beijing, Moscow, Cairo and Seoul.",
    "English name: Tokyo Metropolitan Government. Which phrase of the sentence does it stand for?",
    "(PERSON, Marie Curie) (LOCATION, Paris) (ORGANIZATION, University of Paris)",
    "东京是日本的首都，北京大学位于中国北京市海淀区。李白是唐代诗人。",
    "東京都は日本の首都である。京都大学は京都市にある国立大学です。ソニー株式会社の本社は東京にある。",
    "서울특별시는 대한민국의 수도이다. 삼성전자는 수원에 본사를 두고 있다.",
    "Москва — столица России. Московский государственный университет основан в 1755 году.",
    "القاهرة هي عاصمة مصر. جامعة القاهرة من أقدم الجامعات في العالم العربي.",
    "नई दिल्ली भारत की राजधानी है। दिल्ली विश्वविद्यालय एक प्रमुख विश्वविद्यालय है।",
    "歐洲聯盟是歐洲多國共同建立的政治實體，總部位於比利時布魯塞爾。",
    "0123456789 ,.;:!?()[]{}\"'-–—/。、「」『』（）《》・",
]


def train_tokenizer(texts: Iterable[str] = (), vocab_size: int = 4096, special: list[str] | None = None):
    """Train a byte-level BPE tokenizer (any script, no unknown characters) and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = special or CHATML_SPECIAL
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(SAMPLE_TEXT) + list(texts)
    tok.train_from_iterator(corpus * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def build_tiny_causal_lm(
    out_dir: str | Path, texts: Iterable[str] = (), seed: int = 0, vocab_size: int = 4096
):
    """Write a tiny Qwen2ForCausalLM + ChatML tokenizer to `out_dir`; returns the path."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    tokenizer.add_special_tokens(
        {
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "additional_special_tokens": ["<|im_start|>"],
        }
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = 1024
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_t5(out_dir: str | Path, texts: Iterable[str] = (), seed: int = 0, vocab_size: int = 4096):
    """Write a tiny T5ForConditionalGeneration + byte-level BPE tokenizer to `out_dir`; returns the path."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    out = Path(out_dir)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, special=T5_SPECIAL)
    tokenizer.add_special_tokens({"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"})
    tokenizer.model_max_length = 512
    # T5 appends </s> to inputs; a post-processor does that for our BPE tokenizer too.
    from tokenizers import processors

    eos_id = tokenizer.eos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
    )
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=128,
        d_ff=512,
        d_kv=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.generation_config.decoder_start_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
