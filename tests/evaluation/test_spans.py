"""Stage 4: snapping alignment answers onto exact spans of the original sentence."""

from __future__ import annotations

import pytest

from evaluation.entities import Sentence
from evaluation.spans import align_to_tokens, clean_answer, place, snap, words_match


def _text(s):
    return None if not s.ok else s.text


@pytest.mark.parametrize(
    ("answer", "text", "lang", "expected", "method"),
    [
        # zh: exact; Simplified answer on Traditional text (and back) through the zh converter
        ("北京", "我在北京讀書", "zh", "北京", "exact"),
        ("北京大学", "他畢業於北京大學。", "zh", "北京大學", "normalized"),
        ("台灣大學", "她在台湾大学工作", "zh", "台湾大学", "normalized"),
        ("ＩＢＭ", "他在IBM工作", "zh", "IBM", "normalized"),
        # zh: the model adds a character: the longest common substring still finds the name
        ("东京都政府", "东京都是日本的首都", "zh", "东京都", "char-lcs"),
        # ja: kanji, hiragana and katakana names are all kept (the authors' code dropped kana)
        ("京都大学", "京都大学は京都市にある。", "ja", "京都大学", "exact"),
        ("ソニー", "ソニー株式会社の本社は東京にある。", "ja", "ソニー", "exact"),
        ("ソニー社", "本社はソニーにある", "ja", "ソニー", "char-lcs"),
        ("ドナルド トランプ", "ドナルド・トランプ氏が来日した。", "ja", "ドナルド・トランプ", "char-lcs"),
        ("さくらももこ", "作者のさくら ももこは静岡出身", "ja", "さくら ももこ", "char-lcs"),
        # ko: particles attached in the sentence or in the answer
        ("서울", "서울특별시는 대한민국의 수도이다.", "ko", "서울", "exact"),
        ("삼성전자가", "삼성전자는 수원에 본사를 두고 있다.", "ko", "삼성전자는", "token"),
        ("대한민국을", "그는 대한민국의 배우이다.", "ko", "대한민국의", "token"),
        # ru: case endings and stress marks
        ("Москва", "Он приехал из Москвы в Петербург.", "ru", "Москвы", "token"),
        (
            "Моско́вский университет",
            "Выпускник Московского университета.",
            "ru",
            "Московского университета",
            "token",
        ),
        ("Москва́", "Москва — столица России.", "ru", "Москва", "normalized"),
        # ar: the answer without the attached preposition / conjunction
        ("القاهرة", "ولد في بالقاهرة عام 1950", "ar", "القاهرة", "exact"),
        ("جامعة القاهرة", "تخرج من بجامعة القاهرة.", "ar", "جامعة القاهرة", "exact"),
        ("وجامعة القاهرة", "درس في جامعة القاهرة.", "ar", "جامعة القاهرة", "token"),
        ("مصر", "زار مصر مرتين", "ar", "مصر", "exact"),
        ("بالقاهرة", "زار القاهرة مرتين", "ar", "القاهرة", "token"),
        # answers wrapped in quotes / preambles
        ("「ソニー」", "本社はソニーにある", "ja", "ソニー", "exact"),
        ("Answer: 北京", "我在北京讀書", "zh", "北京", "exact"),
    ],
)
def test_snap_cases(answer, text, lang, expected, method):
    s = snap(answer, text, lang)
    assert _text(s) == expected, s
    assert s.method == method, s
    if s.ok:
        assert text[s.start : s.end] == s.text


def test_snap_failure_has_reason():
    s = snap("上海", "我在北京讀書", "zh")
    assert not s.ok and s.method == "none" and "char-lcs" in s.reason
    assert snap("", "我在北京讀書", "zh").reason == "empty answer"
    assert snap("Paris", "Он живёт в Москве", "ru").reason.startswith("token")


def test_min_overlap_threshold():
    # one shared character out of four is not enough
    assert not snap("东海大学", "东京", "zh").ok
    assert (
        snap("东海大学", "东京", "zh", min_overlap=0.25).ok is False
    )  # single char never matches a longer answer


def test_repeated_mentions_take_distinct_positions():
    text = "北京很大，北京很美"
    first = snap("北京", text, "zh")
    second = snap("北京", text, "zh", taken=[(first.start, first.end)])
    assert (first.start, second.start) == (0, 5)
    # every occurrence taken: the first is returned and flagged as a repeat
    third = snap("北京", text, "zh", taken=[(0, 2), (5, 7)])
    assert third.reason == "repeat"


def test_english_and_lexicon_fallbacks():
    s = snap("东京", "我住在Tokyo", "zh", english="Tokyo")
    assert (s.text, s.method) == ("Tokyo", "english-exact")
    s = snap("garbage", "他毕业于北京大学", "zh", english="Peking University", lexicon=["北京大学", "北大"])
    assert (s.text, s.method) == ("北京大学", "lexicon-exact")


def test_words_match_affixes():
    assert words_match("서울", "서울에서", "ko")
    assert words_match("россия", "россии", "ru")
    assert words_match("القاهرة", "والقاهرة", "ar")
    assert not words_match("москва", "моряк", "ru")
    assert not words_match("paris", "parish", "en")


def test_clean_answer():
    assert clean_answer('  "東京"。\nextra line') == "東京"
    assert clean_answer("The final result is: 《红楼梦》") == "红楼梦"


def test_place_longer_first_and_repeats():
    sent = Sentence(id="1", text="北京大学位于北京，北京很大。", lang="zh")
    wanted = [
        ("LOC", "北京", "Beijing"),
        ("ORG", "北京大学", "Peking University"),
        ("LOC", "北京", "Beijing"),
    ]
    entities, alignments = place(sent, wanted, None)
    assert [(e.start, e.end, e.type) for e in entities] == [(0, 4, "ORG"), (6, 8, "LOC"), (9, 11, "LOC")]
    assert all(a.snapped and not a.failed for a in alignments)
    assert [a.english for a in alignments] == ["Beijing", "Peking University", "Beijing"]  # in wanted order


def test_place_drops_overlaps_with_reason():
    sent = Sentence(id="1", text="北京大学", lang="zh")
    entities, alignments = place(sent, [("ORG", "北京大学", "PKU"), ("LOC", "北京", "Beijing")], None)
    assert len(entities) == 1
    assert alignments[1].dropped and alignments[1].failed and "overlaps" in alignments[1].reason


def test_align_to_tokens_keeps_korean_particle():
    assert align_to_tokens(0, 2, [(0, 6), (7, 12)]) == (0, 6)
    assert align_to_tokens(3, 5, None) == (3, 5)
