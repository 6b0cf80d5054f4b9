"""End to end with the tiny random-weight model through the hf backend (garbage output, by design: the run
must complete and write well-formed files)."""

from __future__ import annotations

import json

import pytest

from eat.errors import UserError
from evaluation.backends.hf import HFBackend
from evaluation.config import EvalRecipe
from evaluation.run import run_eval

# Our own sentences, one character per line (zh), IOB2.
BIO = """李\tB-PER
白\tI-PER
生\tO
于\tO
碎\tB-LOC
叶\tI-LOC
城\tI-LOC

北\tB-ORG
京\tI-ORG
大\tI-ORG
学\tI-ORG
很\tO
好\tO

东\tB-LOC
京\tI-LOC
"""


def _data(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text(BIO, encoding="utf-8")
    return path


def _check_run(run, n):
    records = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == n
    for r in records:
        assert {"id", "text", "lang", "gold", "pred", "trace"} <= set(r)
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("precision", "recall", "f1", "per_type"):
        assert key in metrics["entity"]
    assert 0.0 <= metrics["entity"]["f1"] <= 1.0
    assert metrics["counts"]["sentences"] == n and metrics["sentences_per_s"] > 0
    assert "seqeval" in metrics and "token_authors" in metrics
    assert (run / "report.md").read_text().startswith("# eat eval")
    return records, metrics


def test_eval_cli_end_to_end_tiny_models(tmp_path, tiny_lm, tiny_t5):
    from eat.cli import main

    data = _data(tmp_path)
    run = tmp_path / "run"
    args = ["eval", "--model", str(tiny_lm), "--ner-model", str(tiny_t5), "--data", str(data), "--lang", "zh"]
    args += ["--out", str(run), "--limit", "2", "--max-new-tokens", "3", "--batch-size", "2"]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)
    records, _ = _check_run(run, 2)
    from eat.prompts import load_prompts

    assert len(records[0]["trace"]["translate_replies"]) == load_prompts().num_turns("translate")
    assert (run / "cache" / "stage1.jsonl").is_file()


def test_recipe_run_llm_ner_direct_and_paper_decoding(tmp_path, tiny_lm):
    data = _data(tmp_path)
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(
        f"kind: eval\nmodel: {tiny_lm}\ndata: {data}\nlang: zh\nout: {tmp_path / 'r'}\nmax_new_tokens: 3\n"
        "decoding: paper\nseed: 3\n"
    )
    from eat.recipes import load_recipe

    cfg = load_recipe(recipe, ["mode=direct"])
    backend = HFBackend(str(tiny_lm), batch_size=2)
    run_eval(cfg, backend=backend)
    _check_run(tmp_path / "r", 3)
    cfg = cfg.model_copy(update={"mode": "eat", "out": str(tmp_path / "e"), "decoding": "greedy"})
    run_eval(cfg, backend=backend)  # ner_model llm: the same backend tags the English
    records, metrics = _check_run(tmp_path / "e", 3)
    assert metrics["ner_model"] == "llm"
    assert all("english_ner_raw" in r["trace"] or "failure" in r["trace"] for r in records)


def test_hf_backend_batches_match_and_adapter_merges_at_load(tmp_path, tiny_lm):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    chats = [
        [{"role": "user", "content": "東京"}],
        [{"role": "user", "content": "a much longer message here"}],
    ]
    plain = HFBackend(str(tiny_lm), batch_size=2)
    one_by_one = HFBackend(str(tiny_lm), batch_size=1)
    greedy = {"do_sample": False}
    assert plain.generate(chats, 5, greedy) == one_by_one.generate(chats, 5, greedy)  # left padding is right
    unmerged = HFBackend(str(tiny_lm), adapter=str(tmp_path / "adapter"), batch_size=2, merge_adapter=False)
    assert isinstance(unmerged.model, PeftModel)
    assert unmerged.generate(chats, 5, greedy) != plain.generate(chats, 5, greedy)
    merged = HFBackend(str(tiny_lm), adapter=str(tmp_path / "adapter"), batch_size=2)  # the default
    assert not isinstance(merged.model, PeftModel)
    assert merged.generate(chats, 5, greedy) == unmerged.generate(chats, 5, greedy)  # same function
    with pytest.raises(UserError, match="merged its adapter for every stage"):
        merged.generate(chats, 5, greedy, adapter=False)  # never the tuned model where the base was asked for
    cfg = EvalRecipe(model=str(tiny_lm), data="x", lang="zh", out="o", decoding="paper", seed=1)
    a = plain.generate(chats, 5, cfg.decoding_kwargs())
    assert a == plain.generate(chats, 5, cfg.decoding_kwargs())  # seeded sampling is reproducible


def test_hf_backend_runs_base_or_adapter_per_call(tmp_path, tiny_lm):
    """An align-only adapter: the same backend answers base-model calls (stages 1-2) exactly as the base
    model does and adapter calls as the merged adapter does, whatever the order, KV reuse included."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    first = [[{"role": "user", "content": "東京"}], [{"role": "user", "content": "a much longer message"}]]
    greedy = {"do_sample": False}
    plain = HFBackend(str(tiny_lm), batch_size=2)
    tuned = HFBackend(str(tiny_lm), adapter=str(tmp_path / "adapter"), batch_size=2)
    want_base, want_tuned = plain.generate(first, 5, greedy), tuned.generate(first, 5, greedy)
    assert want_base != want_tuned
    # A second turn of each chat: KV reuse must not carry the other weights' cache across a switch.
    turn = [{"role": "user", "content": "again"}]
    second = [[*c, {"role": "assistant", "content": r}, *turn] for c, r in zip(first, want_base, strict=True)]
    want_base2 = plain.generate(second, 5, greedy)
    tuned.generate(second, 5, greedy)
    want_tuned2 = tuned.generate(second, 5, greedy)
    for merge in (True, False):
        both = HFBackend(
            str(tiny_lm), adapter=str(tmp_path / "adapter"), batch_size=2, merge_adapter=merge, base_too=True
        )
        assert isinstance(both.model, PeftModel)
        assert both.generate(first, 5, greedy, adapter=False) == want_base
        assert both.generate(second, 5, greedy, adapter=True) == want_tuned2  # kept base KV not reused
        assert both.generate(first, 5, greedy, adapter=True) == want_tuned
        assert both.generate(second, 5, greedy, adapter=False) == want_base2  # back to the base model
        assert both.generate(first, 5, greedy) == want_tuned  # adapter=True is the default
