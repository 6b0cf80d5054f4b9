"""Lead cleaning, surfaces and sentence splitting on our own zh/ko/ru/ar/ja fixture pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from wiki_data.lead import NoSentence, clean_text, lead_wikitext, process_page, split_sentences, title_base

PAGES = Path(__file__).parent / "fixtures" / "pages"


def page(name: str) -> str:
    return (PAGES / f"{name}.wiki").read_text("utf-8")


@pytest.mark.parametrize(
    ("name", "lang", "title", "surface", "sentence", "etype"),
    [
        (
            "zh_taipei_station", "zh", "臺北車站", "台北车站",
            "台北车站（Taipei Main Station）是位于台湾台北市中正区的铁路车站，由台铁管理。", "LOC",
        ),
        ("zh_computer", "zh", "電腦", "计算机", "计算机（computer），又称计算机，是利用数位电子技术进行计算的机器。", None),
        (
            "ko_seoul", "ko", "서울특별시", "서울특별시",
            "서울특별시(서울特別市, Seoul Metropolitan City) 또는 서울은 대한민국의 수도이자 최대 도시이다.", "LOC",
        ),
        ("ko_person", "ko", "김철수", "김철수", "김철수(金哲洙, 1950-3-1 ~)는 대한민국의 소설가이다.", "PER"),
        (
            "ru_riyadh", "ru", "Эр-Рияд", "Эр-Рияд",
            "Эр-Рияд (الرياض, араб. ар-Рияд — «сады») — столица и крупнейший город Саудовской Аравии, "
            "центр одноимённой провинции.", "LOC",
        ),
        (
            "ru_person", "ru", "Петров, Иван Петрович", "Иван Петрович Петров",
            "Иван Петрович Петров (род. 5 мая 1950 г., Москва, СССР) — советский и российский физик, акад. РАН, "
            "т. е. член Академии наук.", "PER",
        ),
        ("ar_cairo", "ar", "القاهرة", "القاهرة", "القاهرة (Cairo) هي عاصمة جمهورية مصر العربية وأكبر مدنها.", "LOC"),
        (
            "ar_company", "ar", "شركة المثال", "شركة المثال",
            "شركة المثال (بالإنجليزية: Example Company) هي شركة اتصالات مقرها في دبي.", "ORG",
        ),
        (
            "ja_ruby", "ja", "山田太郎", "山田 太郎",
            "山田 太郎（やまだ たろう、Taro Yamada、1900年 - 1980年）は、日本の作家。", "PER",
        ),
    ],
)  # fmt: skip
def test_fixture_pages(name, lang, title, surface, sentence, etype):
    res = process_page(title, page(name), lang, "zh-cn")
    assert res.surface == surface
    assert res.sentence == sentence
    assert res.infobox_type == etype
    # Nothing of the removed markup survives.
    for junk in ("{{", "}}", "[[", "]]", "<ref", "'''", "<!--", "()", "（）", "-{", "File:"):
        assert junk not in res.sentence


def test_zh_variant_applies_to_surface_and_sentence():
    res = process_page("臺北車站", page("zh_taipei_station"), "zh", "zh-tw")
    assert res.surface == "臺北車站"
    assert res.sentence.startswith("臺北車站（Taipei Main Station）是位於臺灣")
    assert "鐵路車站" in res.sentence  # -{zh-hans:...; zh-hant:...}- resolved for the Traditional variant


def test_lead_stops_at_first_heading_and_drops_comments():
    text = "intro <!-- hidden == not a heading == -->\n== History ==\nbody"
    lead = lead_wikitext(text)
    assert "History" not in lead and "body" not in lead and "hidden" not in lead


def test_empty_brackets_and_separators_removed():
    assert clean_text("Foo (, ) is a bar", "en") == "Foo is a bar"
    assert clean_text("Foo (; born 1950) is", "en") == "Foo (born 1950) is"
    assert clean_text("東京（）は都市", "ja") == "東京は都市"
    assert clean_text("القاهرة (؛ ) هي", "ar") == "القاهرة هي"


def test_russian_abbreviations_do_not_end_sentences():
    text = (
        "Эр-Рияд (араб. ар-Рияд) — столица, т. е. главный город. Основан в 1746 г. Имени им. Петрова "
        "улица. Второе предложение здесь. Третье?"
    )
    sentences = split_sentences(text, "ru")
    assert sentences == [
        "Эр-Рияд (араб. ар-Рияд) — столица, т. е. главный город.",
        "Основан в 1746 г. Имени им. Петрова улица.",
        "Второе предложение здесь.",
        "Третье?",
    ]


def test_sentence_split_brackets_and_initials():
    text = "A. S. Pushkin (born in Moscow. Russia) was a poet. He wrote e.g. novels. Done."
    assert split_sentences(text, "en") == [
        "A. S. Pushkin (born in Moscow. Russia) was a poet.",
        "He wrote e.g. novels.",
        "Done.",
    ]


def test_cjk_sentence_split():
    text = "東京（とうきょう。旧称）は首都である。人口が多い！本当？「引用。」は続く。"
    assert split_sentences(text, "ja") == [
        "東京（とうきょう。旧称）は首都である。",
        "人口が多い！",
        "本当？",
        "「引用。」は続く。",
    ]


def test_surface_falls_back_to_title_without_disambiguator():
    assert title_base("Mercury (planet)") == "Mercury"
    assert title_base("水星_（行星）") == "水星"
    res = process_page("Mercury (planet)", "Mercury is the smallest planet. It is hot.", "en")
    assert res.surface == "Mercury"
    assert res.sentence == "Mercury is the smallest planet."


def test_no_sentence_raises():
    with pytest.raises(NoSentence):
        process_page("Foo", "{{Infobox person|name=Foo}}\n[[File:x.jpg]]\n== Life ==\nFoo lived.", "en")


def test_language_templates_keep_text_and_pronunciation_goes():
    text = (
        "'''Foo''' ({{lang-de|Fuh}}; {{IPA-de|fuː}}; {{audio|foo.ogg|listen}}; {{nihongo|Foo|風|Fū}}) "
        "is a {{convert|5|km}} river.{{citation needed|date=May 2020}}{{efn|a note}}"
    )
    res = process_page("Foo", text, "en")
    assert res.sentence == "Foo (Fuh; Foo) is a 5 km river."


def test_shrink_templates_keeps_what_the_renderer_reads():
    from wiki_data.lead import process_page, render_lead, shrink_templates

    text = (
        "{{Infobox person|name=[[A]]|image={{x|y}}|birth_date={{birth date|1950|1|2}}}}"
        "'''山田太郎'''（{{lang|en|Taro Yamada}}、{{生年月日と年齢|1950|1|2}} - ）は{{仮リンク|東京|en|Tokyo}}の人{{要出典|date=2020}}。{{unclosed"
    )
    shrunk = shrink_templates(text)
    assert shrunk.startswith(
        "{{Infobox person}}'''山田太郎'''（{{lang|en|Taro Yamada}}、{{生年月日と年齢|1950|1|2}}"
    )
    assert "{{要出典}}" in shrunk and shrunk.endswith("{{unclosed")  # unbalanced: the rest is left alone
    assert render_lead(shrunk, "ja") == render_lead(text, "ja")
    result = process_page("山田太郎", text, "ja")
    assert (
        result.sentence == "山田太郎（Taro Yamada、1950-1-2 -）は東京の人。" and result.infobox_type == "PER"
    )
