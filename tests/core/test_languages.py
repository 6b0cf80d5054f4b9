"""eat/languages.py is the one table every stage asks; these are the answers the stages rely on."""

from eat import languages
from wiki_data.lead import clean_text, split_sentences


def test_codes_with_region_or_script_suffixes_mean_the_base_language():
    assert languages.base("zh-CN") == languages.base("zh_TW") == "zh"
    assert languages.name("ja-jp") == "Japanese" and languages.name("xx") == "xx"


def test_spacing_and_stress_marks():
    assert languages.joiner("ja") == "" and languages.joiner("zh-tw") == "" and languages.joiner("ko") == " "
    assert (
        languages.has_stress_marks("sr")
        and languages.has_stress_marks("ru")
        and not languages.has_stress_marks("ko")
    )


def test_the_miner_follows_the_table():
    # Stress accents go in every stress-marked language (the importer and the miner once disagreed on sr/mk).
    assert clean_text("Бео́град", "sr") == "Београд"
    assert split_sentences("東京は首都。大阪は都市。", "ja") == ["東京は首都。", "大阪は都市。"]
