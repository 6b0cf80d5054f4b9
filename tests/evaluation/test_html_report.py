"""`eat bench --html`: report.html from real pipeline runs (scripted backends), checked as text and in a
headless chromium (playwright): no console or page errors, tables and charts, filters, two runs side by
side, and a sentence carrying script that stays text."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from eat.prompts import load_prompts
from evaluation.bench import bench
from evaluation.cli import bench as bench_cmd
from evaluation.config import EvalRecipe
from evaluation.entities import Entity, Sentence
from evaluation.html_report import SNAP_FAILED, render_html, run_view
from evaluation.records import PredictionRow
from evaluation.run import run_eval
from tests.evaluation.helpers.scripted import ScriptedBackend

PROMPTS = load_prompts()

# A sentence whose text would run script if the page ever parsed it as HTML.
EVIL = '张三说</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
NON_BMP = "𠮷野家在东京。"  # 𠮷 is outside the BMP: 2 UTF-16 units, 1 code point

# id -> (text, gold [(start, end, type)], translation, English NER reply, {English entity: answer})
ZH = {
    "s0": (
        "李白出生于碎叶城。",
        [(0, 2, "PER"), (5, 8, "LOC")],
        "Li Bai was born in Suyab.",
        "(PERSON, Li Bai)\n(LOCATION, Suyab)",
        {"Li Bai": "李白", "Suyab": "碎葉城"},
    ),
    "s1": (
        "北京大学位于海淀。",
        [(0, 4, "ORG"), (6, 8, "LOC")],
        "Peking University is in Haidian.",
        "(ORGANIZATION, Peking University)\n(LOCATION, Haidian)",
        {"Peking University": "北京大学", "Haidian": "海淀"},
    ),
    "s2": (EVIL, [(0, 2, "PER")], "Zhang San said.", "(PERSON, Zhang San)", {"Zhang San": "张三"}),
    "s3": (
        NON_BMP,
        [(0, 3, "ORG"), (4, 6, "LOC")],
        "Yoshinoya is in Tokyo.",
        "(ORGANIZATION, Yoshinoya)\n(LOCATION, Tokyo)",
        {"Yoshinoya": "𠮷野家", "Tokyo": "东京"},
    ),
}
JA = {
    "j0": (
        "ソニーの本社は東京にある。",
        [(0, 3, "ORG"), (7, 9, "LOC")],
        "Sony's head office is in Tokyo.",
        "(ORGANIZATION, Sony)\n(LOCATION, Tokyo)",
        {"Sony": "ソニー", "Tokyo": "東京"},
    ),
    "j1": ("大阪は大きい。", [(0, 2, "LOC")], "Osaka is big.", "(LOCATION, Osaka)", {"Osaka": "名古屋"}),
}


def _answers(cases: dict, lang: str) -> dict:
    """Scripted replies keyed by the user message that starts each chat (list values: turn by turn)."""
    head = PROMPTS.english_ner_instruction.format_map(PROMPTS.variables("en"))
    answers: dict = {}
    for text, _, translation, ner, aligns in cases.values():
        first = PROMPTS.conversation("translate", lang, sentence=text)[-1]["content"]
        answers[first] = ["the names", "a draft", translation][-PROMPTS.num_turns("translate") :]
        answers[head + translation] = ner
        for english, answer in aligns.items():
            chat = PROMPTS.conversation("align", lang, phrase=english, sentence=text)
            answers[chat[-1]["content"]] = answer
    return answers


def _run(root: Path, name: str, cases: dict, lang: str, answers: dict, adapter: str | None) -> Path:
    sentences = [
        Sentence(id=i, text=t, lang=lang, gold=[Entity(s, e, ty, t[s:e]) for s, e, ty in gold])
        for i, (t, gold, *_) in cases.items()
    ]
    cfg = EvalRecipe(
        model="models/Qwen2.5-7B",
        adapter=adapter,
        data=f"data/dev-{lang}.tsv",
        lang=lang,
        out=str(root / name),
    )
    run_eval(cfg, backend=ScriptedBackend(answers), sentences=sentences)
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """base-zh: Peking University aligned to a word not in the sentence; lora-zh: the EVIL sentence not
    translated; lora-ja: Osaka aligned to a word not in the sentence. Everything else is right."""
    root = tmp_path_factory.mktemp("runs")
    base = _answers(ZH, "zh")
    base[
        PROMPTS.conversation("align", "zh", phrase="Peking University", sentence=ZH["s1"][0])[-1]["content"]
    ] = "上海"
    lora = _answers(ZH, "zh")
    lora[PROMPTS.conversation("translate", "zh", sentence=EVIL)[-1]["content"]] = "   "
    return [
        _run(root, "base-zh", ZH, "zh", base, None),
        _run(root, "lora-zh", ZH, "zh", lora, "ckpt/lora-500"),
        _run(root, "lora-ja", JA, "ja", _answers(JA, "ja"), "ckpt/lora-500"),
    ]


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    bench(runs, out, html=True)
    return out / "report.html"


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="eat-data">(.*?)</script>', page, re.S)
    assert m is not None
    assert "<" not in m.group(1) and ">" not in m.group(1)
    return json.loads(m.group(1))


def test_page_is_self_contained_and_escaped(report, runs, tmp_path):
    page = report.read_text(encoding="utf-8")
    # every other output as without --html
    plain = tmp_path / "plain"
    bench(runs, plain)
    assert not (plain / "report.html").exists()
    for name in ("summary.md", "summary.csv", "errors.md"):
        assert (plain / name).read_text(encoding="utf-8") == (report.parent / name).read_text(
            encoding="utf-8"
        )
    # nothing from the network; the two charts bench drew, embedded
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "@import" not in page
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(p) for p in pngs] == [
        (report.parent / "f1.png").read_bytes(),
        (report.parent / "errors.png").read_bytes(),
    ]
    assert "<td>Qwen2.5-7B+lora-500</td>" in page and "<td>dev-ja.tsv</td>" in page
    # the sentence never appears as markup, only as escaped JSON
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    data = _data(page)
    assert [r["label"] for r in data["runs"]] == ["base-zh", "lora-zh", "lora-ja"]
    evil = next(s for s in data["sentences"] if s["id"] == "s2")
    assert evil["text"] == EVIL and evil["views"][2] is None
    assert "untranslated" in evil["views"][1]["tags"] and evil["views"][0]["correct"]
    s1 = next(s for s in data["sentences"] if s["id"] == "s1")
    assert "alignment failed" in s1["views"][0]["tags"] and SNAP_FAILED in s1["views"][0]["tags"]
    failed = next(p for p in s1["views"][0]["paths"] if p["english"] == "Peking University")
    assert failed["answer"] == "上海" and failed["span"] is None and failed["result"].startswith("failed")
    assert len(data["sentences"]) == 6  # runs on the same test file share their sentences
    # the CSP names the inline script by its hash, so no other inline script can run
    script = page[page.rindex("<script>") + len("<script>") : page.rindex("</script>")]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None and f"script-src 'sha256-{digest}'" in html.unescape(csp.group(1))


def test_cli_flag_and_a_run_without_trace(runs, tmp_path):
    res = CliRunner().invoke(bench_cmd, [str(runs[0]), str(runs[1]), "--out", str(tmp_path / "o"), "--html"])
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output and (tmp_path / "o" / "report.html").is_file()
    res = CliRunner().invoke(bench_cmd, [str(runs[0]), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0 and "report.html" not in res.output
    assert not (tmp_path / "p" / "report.html").exists()
    assert "--html" in CliRunner().invoke(bench_cmd, ["--help"]).output
    # a score-only row (no trace) and a run folder without predictions.jsonl still render
    view = run_view(PredictionRow(text="ab", gold=[Entity(0, 1, "PER")]))
    assert view.tags == ["missed"] and not view.correct and view.translation is None
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metrics.json").write_text(json.dumps({"entity": {"f1": 0.5}}), encoding="utf-8")
    out = bench([bare], tmp_path / "q", html=True)
    assert _data(render_html(out.runs, out.rows, []))["sentences"] == []


# ------------------------------------------------------------------------------------------ in a browser


def _chromium() -> str | None:
    """A chromium to drive: $EAT_CHROMIUM, else the system's (Debian: `apt-get install chromium`)."""
    for name in (os.environ.get("EAT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (make install-dev installs it)"
    )
    executable = _chromium()
    with sync_api.sync_playwright() as p:
        if executable is None and not Path(p.chromium.executable_path).is_file():
            pytest.skip("no chromium: apt-get install chromium (or set EAT_CHROMIUM to a chromium binary)")
        browser = p.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, report):
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(report.as_uri())
    page.wait_for_selector(".sentence")
    yield page
    assert problems == []
    page.close()


def _shown(page) -> list[str]:
    return page.eval_on_selector_all(".sentence", "nodes => nodes.map(n => n.dataset.id)")


def test_page_in_a_browser(page):
    assert page.title() == "eat bench report"
    assert page.locator("table.scores tbody tr").count() == 3
    assert page.locator("table.errors tbody tr").count() == 3
    for img in page.locator("figure img").all():  # decoded, not broken
        assert img.evaluate("i => i.complete && i.naturalWidth > 100")
    # two runs compared by default: the zh sentences, each with both runs' predictions
    assert _shown(page) == ["s0", "s1", "s2", "s3"]
    assert page.locator("#count").text_content().startswith("4 of 6 sentences")
    s1 = page.locator('.sentence[data-id="s1"]')
    assert s1.locator(".col h3").all_text_contents()[0].startswith("base-zh: Qwen2.5-7B")
    assert s1.locator(".col h3").all_text_contents()[1].startswith("lora-zh: Qwen2.5-7B+lora-500")
    base, lora = s1.locator('.col[data-run="0"]'), s1.locator('.col[data-run="1"]')
    assert base.locator("mark.ok").all_text_contents() == ["海淀LOC"]
    assert lora.locator("mark.ok").all_text_contents() == ["北京大学ORG", "海淀LOC"]
    assert "上海" in base.locator("table.paths").text_content()
    assert "alignment failed 1" in base.text_content() and "differs" in base.text_content()
    # spans count code points: 𠮷 takes two UTF-16 units and must not shift them
    s3 = page.locator('.sentence[data-id="s3"] .gold-text mark')
    assert s3.all_text_contents() == ["𠮷野家ORG", "东京LOC"]


def test_filters(page):
    page.fill("#search", "碎叶")
    assert _shown(page) == ["s0"]
    page.fill("#search", "yoshinoya")  # the translation is searched too
    assert _shown(page) == ["s3"]
    page.fill("#search", "")
    page.check("#only-errors")
    assert _shown(page) == ["s1", "s2"]
    assert page.locator("#count").text_content().startswith("2 of 6")
    page.select_option("#stage", "untranslated")
    assert _shown(page) == ["s2"]
    page.select_option("#stage", "")
    page.uncheck("#only-errors")
    # compare base-zh with lora-ja: both languages, then one
    page.select_option("#run-right", "2")
    assert len(_shown(page)) == 6
    page.select_option("#lang", "ja")
    assert _shown(page) == ["j0", "j1"]
    page.check("#only-errors")
    assert _shown(page) == ["j1"]
    assert page.locator('.sentence[data-id="j1"] .col[data-run="2"] .failure').count() == 0
    assert "snap failed" in page.locator("#stage").text_content()


def test_script_in_a_sentence_stays_text(page):
    assert page.evaluate("window.__pwned") is None
    evil = page.locator('.sentence[data-id="s2"]')
    assert evil.locator("img").count() == 0 and page.locator("body script").count() == 2
    assert evil.locator(".gold-text").text_content() == EVIL.replace("张三", "张三PER", 1)
    assert "stage 1 failed (translation)" in evil.locator('.col[data-run="1"]').text_content()
    assert page.evaluate("window.__pwned") is None
