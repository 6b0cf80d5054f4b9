"""`eat wiki types` on a dump assembled from the real Wikidata entities in ../shared/data/wikidata."""

from __future__ import annotations

import bz2
import gzip
import json

import pyarrow.parquet as pq
import pytest

from eat.errors import UserError
from wiki_data.typing_rules import class_types, infobox_type
from wiki_data.wikidata import ClassResolver, TypesConfig, build_types, parse_entity


def claim(prop: str, qid: str, rank: str = "normal") -> dict:
    value = {"entity-type": "item", "numeric-id": int(qid[1:]), "id": qid}
    return {
        "mainsnak": {"snaktype": "value", "property": prop, "datavalue": {"value": value}},
        "type": "statement",
        "rank": rank,
    }


def class_entity(qid: str, *parents: str) -> dict:
    return {"type": "item", "id": qid, "labels": {}, "claims": {"P279": [claim("P279", p) for p in parents]}}


def write_dump(path, entities: list[dict], opener) -> None:
    """Wikidata's dump layout: '[' line, one entity per line ending in ',', ']' line."""
    lines = ["[\n"] + [json.dumps(e, separators=(",", ":")) + ",\n" for e in entities[:-1]]
    lines += [json.dumps(entities[-1], separators=(",", ":")) + "\n", "]\n"]
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.writelines(lines)


@pytest.fixture(scope="module")
def entities(shared_data) -> list[dict]:
    real = []
    for path in sorted((shared_data / "wikidata").glob("Q*.json")):
        data = json.loads(path.read_text("utf-8"))
        real.append(next(iter(data["entities"].values())) if "entities" in data else data)
    # Our own class entities to connect the real items to mapped classes through P279 chains.
    extra = [
        class_entity("Q42744322", "Q1549591"),  # -> big city (mapped LOC)
        class_entity("Q29969141", "Q99999001"),
        class_entity("Q99999001", "Q99999002"),  # a chain that maps nowhere
        class_entity("Q2342494", "Q7725634"),  # a parent of Q571 book -> literary work
    ]
    return real + extra


@pytest.mark.parametrize("opener", [gzip.open, bz2.open])
def test_types_from_real_entities(entities, tmp_path, opener):
    dump = tmp_path / ("dump.json.gz" if opener is gzip.open else "dump.json.bz2")
    write_dump(dump, entities, opener)
    out = tmp_path / "types.parquet"
    counts = build_types(TypesConfig(wikidata=dump, out=out))
    table = pq.read_table(out).to_pylist()
    types = {r["qid"]: r["type"] for r in table}
    assert types["Q646148"] == "PER"  # Henning Christophersen, P31 Q5 (current id format)
    assert types["Q328212"] == "PER"  # Veronica Roth, P31 given by numeric-id only (old format)
    assert types["Q2112"] == "LOC"  # Bielefeld: big city / college town
    assert types["Q271094"] == "LOC"  # Neihu District
    assert types["Q4132785"] == "MISC"  # Bring the Jubilee: instance of book
    assert "Q571" not in types  # a class, not an instance
    assert counts["typed"] == len(table) and counts["unparsable_lines"] == 0


def test_parse_entity_skips_qualifiers():
    ent = {
        "type": "item",
        "id": "Q1",
        "claims": {
            "P17": [
                {"mainsnak": {"property": "P17"}, "qualifiers": {"P31": [claim("P31", "Q5")["mainsnak"]]}}
            ],
            "P31": [claim("P31", "Q515"), claim("P31", "Q6256", rank="preferred")],
        },
    }
    assert parse_entity(json.dumps(ent, separators=(",", ":"))) == ("Q1", ["Q6256", "Q515"], [])


def test_resolver_prefers_nearest_class_then_priority():
    mapping = {"Q5": "PER", "Q43229": "ORG", "Q515": "LOC"}
    res = ClassResolver({"Qa": ("Qb", "Q515"), "Qb": ("Q5",), "Qc": ("Q43229", "Q515")}, mapping)
    assert res.item_type(("Qa",)) == ("LOC", "Q515")  # one hop beats two
    assert res.item_type(("Qc",)) == ("ORG", "Q43229")  # same distance: ORG before LOC
    assert res.item_type(("Qzzz",)) == (None, None)


def test_shipped_mappings():
    assert class_types()["Q5"] == "PER" and class_types()["Q515"] == "LOC" and class_types()["Q3918"] == "ORG"
    assert infobox_type("en", "Infobox_person") == "PER"
    assert infobox_type("ru", "Персона") == "PER" and infobox_type("ru", "НП") == "LOC"
    assert infobox_type("ko", "정보상자 회사") == "ORG" and infobox_type("ar", "صندوق معلومات شخص") == "PER"
    assert (
        infobox_type("ja", "基礎情報 会社") == "ORG" and infobox_type("zh", "Infobox 國家", "zh-cn") == "LOC"
    )
    assert infobox_type("en", "Cite web") is None and infobox_type("ja", "出典の明記") is None


def test_missing_dump(tmp_path):
    with pytest.raises(UserError, match="not found"):
        build_types(TypesConfig(wikidata=tmp_path / "nope.json.gz", out=tmp_path / "t.parquet"))


def test_parse_entity_whatever_the_key_order():
    """A dump re-serialised with sorted keys puts claims (full of "id" keys) before the entity's own id."""
    ent = {
        "type": "item",
        "id": "Q64",
        "labels": {"en": {"language": "en", "value": 'a "quoted" {brace} label'}},
        "claims": {"P31": [claim("P31", "Q515") | {"id": "Q64$6f1c"}], "P279": [claim("P279", "Q486972")]},
    }
    want = ("Q64", ["Q515"], ["Q486972"])
    assert parse_entity(json.dumps(ent, separators=(",", ":"))) == want
    assert parse_entity(json.dumps(ent, sort_keys=True)) == want
    lexeme = {
        "type": "lexeme",
        "id": "L7",
        "senses": [{"id": "L7-S1", "claims": {"P31": [claim("P31", "Q5")]}}],
    }
    assert parse_entity(json.dumps(lexeme, sort_keys=True)) == ("L7", [], [])
    assert parse_entity('{"type":"item","labels":{}}') is None


def test_files_that_are_not_wikidata_dumps(tmp_path):
    csv = tmp_path / "items.csv"
    csv.write_text("qid,label\nQ1,universe\n", encoding="utf-8")
    with pytest.raises(UserError, match="expected a Wikidata JSON dump"):
        build_types(TypesConfig(wikidata=csv, out=tmp_path / "t.parquet"))
    assert not (tmp_path / "t.parquet").exists()


def test_existing_types_table_is_not_replaced_silently(entities, tmp_path):
    dump = tmp_path / "dump.json.gz"
    write_dump(dump, entities, gzip.open)
    out = tmp_path / "types.parquet"
    build_types(TypesConfig(wikidata=dump, out=out))
    with pytest.raises(UserError, match="--overwrite"):
        build_types(TypesConfig(wikidata=dump, out=out))
    assert build_types(TypesConfig(wikidata=dump, out=out, overwrite=True))["typed"] > 0
