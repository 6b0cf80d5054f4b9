"""The paper's claim on a real model, at CPU scale: what Wikipedia alignment fine-tuning gains.

Runs the project's own commands, each printed as it runs (a re-run reuses finished steps):
1. `eat wiki import-eat` (the authors' zh and ja corpora) -> `eat wiki sft --tasks align --shift-fraction 0.5`
   (split by entity; half the rows have other sentences before the answer, so the answer is not the first
   phrase) -> `align_test.jsonl` (validation entities only, plain and shifted); for ja also link mentions
   mined with `eat wiki mine --mentions` from the real jawiki sample (English names from the authors' corpus,
   see `ja_link_tables`), mixed into training (`--mention-fraction`) and held out as
   `align_test_mentions.jsonl` (slices: not at the sentence start, surface differs, several per sentence);
2. `eat train recipes/qwen2.5-0.5b_lora_cpu.yaml` on the real Qwen2.5 0.5B instruct model;
3. stage-3 alignment on held-out items, base vs tuned vs the first-phrase rule (`evaluation.align_eval`):
   exact match and snapped-span accuracy, plain and shifted apart (the first-phrase rule scores 0 on shifted
   items by construction: that column is the one a shortcut cannot pass);
4. `eat eval` on the first N WikiANN dev sentences of zh and ja with spaCy in stage 2, modes eat,
   translate-test and direct (entity F1 and the authors' token metric): base; tuned (the adapter on stage 3
   only, `--adapter-stages align`, the default: it was trained on align chats only); tuned-all (the adapter on
   every turn, which shows what an align-only adapter does to translation and direct tagging); then
   `eat bench` for the per-stage error breakdown.
Writes real_quality.md and real_quality.png into OUT/wikiann-N/ (N: --wikiann).

    python bench/real_quality.py --out runs/real-quality            # defaults: ~40 min on 2 cores
    python bench/real_quality.py --out /tmp/rq --align-per-lang 4 --wikiann 2 --max-steps 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import bar_chart, md_table, write_markdown  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
MODELS = Path(os.environ.get("EAT_REAL_MODELS") or Path.home() / ".cache" / "eat-ner" / "real-models")
EAT = [sys.executable, "-m", "eat"]


def run(cmd: list[str], done: Path | None = None) -> None:
    """Run one step, printed as a shell command; skipped when `done` exists (a re-run resumes)."""
    if done is not None and done.exists():
        print(f"# done already: {done}")
        return
    print("$ " + shlex.join(str(c) for c in cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run([str(c) for c in cmd], check=True, cwd=REPO)
    print(f"# {time.perf_counter() - t0:.0f} s", flush=True)


def ja_link_tables(folder: Path) -> Path:
    """A jawiki dump folder for `eat wiki mine --mentions`: the real sample and SQL tables for it.

    ../shared has no real langlinks for the articles the sample links to, so the English names come from the
    authors' ja corpus (`tgt_entity` -> `eng_entity`, real names as the authors mined them): a link whose
    target is a corpus entity becomes a mention with that English name; other targets stay without an
    English link and are dropped. The sample's own redirect and page_props tables (test fixtures) are used.
    """
    import re

    from wiki_data.mentions import link_title
    from wiki_data.pages import iter_raw_pages, parse_page
    from wiki_data.sql_dump import SqlDump, format_table_dump

    sample = SHARED / "wikipedia" / "jawiki-20230501-pages-articles-sample238.xml.bz2"
    fixtures = REPO / "tests" / "wiki_data" / "fixtures" / "jawiki"
    if (folder / "jawiki-20230501-langlinks.sql.gz").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jawiki-20230501-pages-articles.xml.bz2").unlink(missing_ok=True)
    (folder / "jawiki-20230501-pages-articles.xml.bz2").symlink_to(sample)
    english = {
        r["tgt_entity"]: r["eng_entity"]
        for r in json.loads((SHARED / "eat-corpus" / "corpus_ja.json").read_text("utf-8"))
    }
    pages = [parse_page(raw) for raw in iter_raw_pages(sample)]
    rows = [(p.page_id, p.ns, (p.title.split(":", 1)[1] if p.ns else p.title).replace(" ", "_"), int(p.redirect)) for p in pages]  # fmt: skip
    known = {p.title for p in pages if p.ns == 0}
    targets = {
        link_title(m.group(1))
        for p in pages
        if p.ns == 0
        for m in re.finditer(r"\[\[([^\[\]|{}<>]+)", p.text)
    }
    next_id = 10_000_000
    for title in sorted(t for t in targets - known if t and ":" not in t):
        next_id += 1
        rows.append((next_id, 0, title.replace(" ", "_"), 0))
    # The sample's own pages keep the fixtures' English links (real names, or a "Ja sample N" placeholder that
    # makes the page a source of mentions; mentions of placeholder targets are dropped in `real_mentions`).
    fixture_en = {pid: t for pid, lang, t in SqlDump(fixtures / "jawiki-20230501-langlinks.sql.gz", "langlinks").rows(["ll_from", "ll_lang", "ll_title"]) if lang == "en"}  # fmt: skip
    links = []
    for pid, ns, t, _ in rows:
        name = english.get(t.replace("_", " ")) or fixture_en.get(pid)
        if ns == 0 and name:
            links.append((pid, "en", name))
    page_cols = ["page_id", "page_namespace", "page_title", "page_is_redirect"]
    (folder / "jawiki-20230501-page.sql.gz").write_bytes(format_table_dump("page", rows, page_cols))
    for name in ("redirect", "page_props"):  # the sample's own: real redirects, qids, disambiguation flags
        (folder / f"jawiki-20230501-{name}.sql.gz").write_bytes(
            (fixtures / f"jawiki-20230501-{name}.sql.gz").read_bytes()
        )
    (folder / "jawiki-20230501-langlinks.sql.gz").write_bytes(
        format_table_dump("langlinks", links, ["ll_from", "ll_lang", "ll_title"])
    )
    return folder


def real_mentions(mined: Path, out: Path) -> Path:
    """The mentions of `mined` whose English name is real (not a test fixture's "Ja sample N" placeholder)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from wiki_data.schema import read_mentions

    if not (out / "mentions-00000.parquet").is_file():
        table = read_mentions(mined)
        table = table.filter(pc.invert(pc.starts_with(table["en_title"], "Ja sample")))
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "mentions-00000.parquet")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/real-quality"))
    ap.add_argument("--model", type=Path, default=MODELS / "qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--spacy", type=Path, default=MODELS / "en_core_web_sm")
    ap.add_argument("--langs", default="zh,ja")
    ap.add_argument("--max-per-lang", type=int, default=375, help="align rows per language before the split")
    ap.add_argument("--max-steps", type=int, default=5, help="LoRA steps (~9 s each on 2 idle cores)")
    ap.add_argument("--align-per-lang", type=int, default=50, help="held-out align items per language")
    ap.add_argument("--wikiann", type=int, default=20, help="WikiANN dev sentences per language")
    ap.add_argument("--modes", default="eat,translate-test,direct")
    ap.add_argument(
        "--mention-fraction",
        type=float,
        default=0.3,
        help="share of ja align rows from link mentions of the real jawiki sample (0: lead-style data only)",
    )
    args = ap.parse_args()
    out = args.out.resolve()
    langs = args.langs.split(",")
    for path, what in ((args.model, "model"), (args.spacy, "spaCy pipeline")):
        if not path.exists():
            sys.exit(f"error: {what} not found at {path}; make it with ../shared/tools/real-models")

    # 1. data
    pairs = []
    for lang in langs:
        pairs += ["--pairs", out / f"pairs-{lang}"]
        corpus = SHARED / "eat-corpus" / f"corpus_{lang}.json"
        run(
            [*EAT, "wiki", "import-eat", "--corpus", corpus, "--lang", lang, "--out", out / f"pairs-{lang}"],
            done=out / f"pairs-{lang}",
        )
    mention_args = []
    if "ja" in langs and args.mention_fraction > 0:
        dump = ja_link_tables(out / "jawiki-links")
        run(
            [*EAT, "wiki", "mine", "--lang", "ja", "--dump-dir", dump, "--out", out / "mentions-ja", "--mentions",
             "--workers", "1"],
            done=out / "mentions-ja" / "stats.json",
        )  # fmt: skip
        mentions = real_mentions(out / "mentions-ja", out / "mentions-ja-real")
        mention_args = ["--mentions", mentions, "--mention-fraction", args.mention_fraction]
    sft = out / "sft"
    run(
        [
            *EAT,
            "wiki",
            "sft",
            *pairs,
            "--out",
            sft,
            "--tasks",
            "align",
            "--shift-fraction",
            "0.5",
            "--max-per-lang",
            args.max_per_lang,
            "--val-fraction",
            "0.2",
            *mention_args,
        ],
        done=sft / "align_test.jsonl",
    )

    # 2. training
    adapter = out / "lora"
    t0 = time.perf_counter()
    run(
        [
            *EAT,
            "train",
            REPO / "recipes" / "qwen2.5-0.5b_lora_cpu.yaml",
            f"model.name_or_path={args.model}",
            f"data.path={sft}",
            f"training.output_dir={adapter}",
            f"training.max_steps={args.max_steps}",
            f"training.save_steps={args.max_steps}",
        ]
    )
    train_s = time.perf_counter() - t0
    train_metrics = json.loads((adapter / "metrics.json").read_text())

    # 3. alignment on held-out items
    align_rows = []
    for system, extra in (
        ("first_phrase", ["--first-phrase"]),
        ("base", ["--model", args.model]),
        ("tuned", ["--model", args.model, "--adapter", adapter]),
    ):
        folder = out / f"align-{system}"
        run(
            [
                sys.executable,
                "-m",
                "evaluation.align_eval",
                sft / "align_test.jsonl",
                *(
                    [sft / "align_test_mentions.jsonl"]
                    if (sft / "align_test_mentions.jsonl").is_file()
                    else []
                ),
                "--out",
                folder,
                "--per-lang",
                args.align_per_lang,
                "--batch-size",
                "8",
                *extra,
            ],
            done=folder / "metrics.json",
        )
        metrics = json.loads((folder / "metrics.json").read_text())
        for score in metrics["scores"]:
            align_rows.append(
                {
                    "system": system,
                    "lang": score["lang"],
                    "items": score["slice"],
                    "n": score["n"],
                    "exact": f"{score['exact']:.0%}",
                    "snapped": f"{score['snapped']:.0%}",
                }
            )

    # 4. the whole pipeline on WikiANN
    ner_rows, runs = [], []
    evals = out / f"wikiann-{args.wikiann}"  # one folder per sample size: a run's done marker is its metrics
    for lang in langs:
        for mode in args.modes.split(","):
            systems = [("base", [])]
            if mode != "direct":  # direct tagging is not stage 3: an align-only adapter leaves it as base
                systems.append(("tuned", ["--adapter", adapter]))
            systems.append(("tuned-all", ["--adapter", adapter, "--adapter-stages", "all"]))
            for system, extra in systems:
                folder = evals / f"{lang}-{mode}-{system}"
                if system != "base":  # stages the adapter does not touch come from the base run
                    extra = [*extra, "--reuse-replies", evals / f"{lang}-{mode}-base"]
                run(
                    [
                        *EAT,
                        "eval",
                        "--model",
                        args.model,
                        *extra,
                        "--ner-model",
                        f"spacy:{args.spacy}",
                        "--data",
                        SHARED / "wikiann-dev" / f"dev-{lang}.tsv",
                        "--lang",
                        lang,
                        "--mode",
                        mode,
                        "--limit",
                        args.wikiann,
                        "--batch-size",
                        "8",
                        "--out",
                        folder,
                    ],
                    done=folder / "metrics.json",
                )
                m = json.loads((folder / "metrics.json").read_text())
                runs.append(folder)
                ner_rows.append(
                    {
                        "lang": lang,
                        "mode": mode,
                        "system": system,
                        "entity F1": f"{m['entity']['f1']:.3f}",
                        "token F1 (authors')": f"{m['token_authors']['f1']:.3f}"
                        if m.get("token_authors")
                        else "-",
                        "failures": ", ".join(f"{k} {v}" for k, v in m["counts"]["failures"].items())
                        or "none",
                        "sentences/s": m["sentences_per_s"],
                    }
                )
    run([*EAT, "bench", *runs, "--out", evals / "bench", "--html"])

    sections = [
        (
            None,
            f"Model `{args.model.name}`, LoRA recipe `recipes/qwen2.5-0.5b_lora_cpu.yaml`, "
            f"{args.max_steps} steps ({train_s:.0f} s in this invocation: about 0 when an earlier one had "
            f"trained it; train loss {train_metrics.get('train_loss')}); "
            f"command: `python bench/real_quality.py {' '.join(sys.argv[1:])}`.",
        ),
        ("Stage 3 alignment on held-out entities", md_table(align_rows)),
        ("EAT on WikiANN dev (spaCy in stage 2)", md_table(ner_rows)),
        (
            None,
            f"Per-stage error breakdown: `{evals / 'bench' / 'errors.md'}`; every sentence's path through "
            f"the stages: `{evals / 'bench' / 'report.html'}`.",
        ),
    ]
    write_markdown(evals / "real_quality.md", "Real model: base vs tuned", sections)
    hard = [
        r for r in align_rows if r["items"] in ("shifted", "mentions: not at start") and r["lang"] != "all"
    ]
    bar_chart(
        evals / "real_quality.png",
        [f"{r['system']} {r['lang']} {r['items']}" for r in hard],
        [float(r["exact"].rstrip("%")) for r in hard],
        "exact match (%)",
        "Stage-3 alignment where the answer is not the first phrase (shifted leads; link mentions)",
    )
    print((evals / "real_quality.md").read_text())


if __name__ == "__main__":
    main()
