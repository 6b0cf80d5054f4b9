"""The hf backend's KV reuse (each chat's previous turn kept, prompts prefilled apart from decoding) must
not change a single greedy token: compared with plain batched `generate` and with one chat at a time."""

from __future__ import annotations

import pytest

from eat.prompts import load_prompts
from evaluation.backends.hf import HFBackend
from evaluation.config import EvalRecipe
from evaluation.entities import Sentence
from evaluation.pipeline import Pipeline


# A three-turn translate chat (the shape of the authors' prompts) so later turns can start from kept KV.
def _prompts():
    from eat.prompts import ChatTemplate

    prompts = load_prompts(None)
    three = ChatTemplate(
        preamble=[{"role": "system", "content": "You translate {language} into English."}],
        turns=[
            "{language} sentence: {sentence}\nList its names.",
            "Now translate it.",
            "The translation only.",
        ],
    )
    return prompts.model_copy(update={"translate": three})


# Our own sentences, of different lengths so batches pad.
TEXTS = ["李白生于碎叶城。", "北京大学很好。", "东京", "苏轼在杭州做官，修了一条长堤，后人叫它苏堤。"]


def _run(backend: HFBackend, tiny_lm, tmp_path) -> tuple[dict, list]:
    cfg = EvalRecipe(model=str(tiny_lm), data="x", lang="zh", out=str(tmp_path), max_new_tokens=6)
    pipeline = Pipeline(cfg, backend, prompts=_prompts())
    sentences = [Sentence(id=f"s{i}", text=t, lang="zh") for i, t in enumerate(TEXTS)]
    stage1 = pipeline.translate(sentences)  # three turns per chat
    stage3 = pipeline.align([(s, "Li Bai") for s in sentences])
    return stage1, stage3


def test_kv_reuse_gives_the_same_greedy_replies(tmp_path, tiny_lm):
    reused = HFBackend(str(tiny_lm), batch_size=3)
    plain = HFBackend(str(tiny_lm), batch_size=3, reuse_kv=False)
    single = HFBackend(str(tiny_lm), batch_size=1, reuse_kv=False)
    got = _run(reused, tiny_lm, tmp_path)
    assert reused.reuse_kv and reused.stats["reused_tokens"] > 0  # later turns did start from kept KV
    assert reused.stats["shared_tokens"] > 0  # first turns started from the shared opening
    assert got == _run(plain, tiny_lm, tmp_path) == _run(single, tiny_lm, tmp_path)


def test_kv_reuse_with_replies_cut_by_eos(tmp_path, tiny_lm):
    """Rows that stop early (EOS mid-batch) keep only their real tokens for the next turn."""
    probe = HFBackend(str(tiny_lm), batch_size=4, reuse_kv=False)
    chat = _prompts().conversation("translate", "zh", sentence=TEXTS[0])
    ids = probe.tokenizer(probe.render(chat), add_special_tokens=False, return_tensors="pt")
    out = probe.model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    stop = new[2]  # a token greedy decoding emits: make it the EOS
    first_reply = probe.tokenizer.decode(new[: new.index(stop) + 1], skip_special_tokens=True).strip()
    backends = [
        HFBackend(str(tiny_lm), batch_size=4),
        HFBackend(str(tiny_lm), batch_size=1, reuse_kv=False),
    ]
    for b in backends:
        b.stop_ids = [stop]
    reused, single = (_run(b, tiny_lm, tmp_path) for b in backends)
    assert reused == single
    assert reused[0]["s0"][0] == first_reply  # cut at the EOS (a plain token here, so kept in the text)


@pytest.mark.slow
def test_kv_cache_budget_is_a_recipe_key(tmp_path, tiny_lm):
    """`kv_cache_gib` reaches the backend: 0 turns reuse off, a tiny budget keeps fewer chats, same replies."""
    from evaluation.backends import make_backend

    def backend(gib: float) -> HFBackend:
        cfg = EvalRecipe(model=str(tiny_lm), data="x", lang="zh", out=str(tmp_path), kv_cache_gib=gib)
        return make_backend(cfg)

    off, small, default = backend(0), backend(3e-4), backend(2.0)
    assert not off.reuse_kv and default.kv_reuse_bytes == 2 * 1024**3
    replies = [_run(b, tiny_lm, tmp_path) for b in (off, small, default)]
    assert replies[0] == replies[1] == replies[2]
    assert off.stats["reused_tokens"] == 0
    assert 0 < small.stats["reused_tokens"] < default.stats["reused_tokens"]
