"""`eat wiki types`: one pass over a Wikidata JSON dump -> a qid -> PER/ORG/LOC/MISC table.

An item's type is that of the nearest mapped class (wiki_data/data/wikidata_classes.json) reachable from
its P31 (instance of) values through P279 (subclass of) edges seen in the same dump. Entity lines are not
fully decoded: only the P31/P279 claim arrays are, which is most of the speed-up on 100 GB dumps.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from eat.config import StrictModel
from eat.errors import UserError
from wiki_data.typing_rules import TYPE_PRIORITY, class_types

log = logging.getLogger(__name__)
_ID = re.compile(r'"id"\s*:\s*"([^"]+)"')
_CLAIMS = re.compile(r'"claims"\s*:\s*\{')
_PROP = {p: re.compile(r'"' + p + r'"\s*:\s*\[') for p in ("P31", "P279")}
# JSON strings (skipped whole, so braces inside labels do not count) or brackets.
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_DECODER = json.JSONDecoder()
MAX_DEPTH = 12


class TypesConfig(StrictModel):
    """Options of `eat wiki types`."""

    wikidata: Path = Field(
        description="Wikidata JSON dump (latest-all.json.gz or .bz2, one entity per line)."
    )
    out: Path = Field(description="Output Parquet table with columns qid, type, class.")
    workers: int = Field(1, ge=1, description="Worker processes decoding entity lines.")
    overwrite: bool = Field(False, description="Replace an existing --out table.")


def _open_text(path: Path):
    import bz2
    import gzip

    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rt", encoding="utf-8")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_entity_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, entity JSON) for each entity line of a dump (`[`, `]` and trailing commas dropped)."""
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if line in ("[", "]", ""):
                    continue
                if line.endswith(","):
                    line = line[:-1]
                yield lineno, line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the Wikidata dump ({exc})", path=path) from None


def _claim_ids(line: str, start: int, prop: str) -> list[str]:
    out: list[str] = []
    pattern = _PROP[prop]
    pos = start
    while True:
        m = pattern.search(line, pos)
        if m is None:
            return out
        try:
            claims, end = _DECODER.raw_decode(line, m.end() - 1)
        except json.JSONDecodeError:
            return out
        pos = end
        statements = [c for c in claims if isinstance(c, dict) and "mainsnak" in c]
        if not statements:  # a qualifier or reference using the property: keep looking
            continue
        statements.sort(key=lambda c: {"preferred": 0, "normal": 1}.get(c.get("rank"), 2))
        for claim in statements:
            snak = claim["mainsnak"]
            if snak.get("property") != prop or snak.get("snaktype") != "value":
                continue
            value = snak.get("datavalue", {}).get("value", {})
            if "id" in value:
                out.append(value["id"])
            elif "numeric-id" in value:
                out.append(f"Q{value['numeric-id']}")
        return out


def _top_level_id(line: str) -> str | None:
    """The `"id"` of the entity object itself, not one of a nested object.

    Wikidata writes `"type"` and `"id"` first, so the first match is almost always it and only a short prefix
    is scanned; dumps re-serialised with sorted keys put `"claims"` (full of `"id"` keys) before `"id"`.
    """
    depth, pos = 0, 0
    for m in _ID.finditer(line):
        for tok in _NESTING.finditer(line, pos, m.start()):
            c = tok.group()
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
        pos = m.start()
        if depth == 1:
            return m.group(1)
    return None


def parse_entity(line: str) -> tuple[str, list[str], list[str]] | None:
    """(entity id, P31 values, P279 values) of one entity line; None if it is not an entity.

    Only items (Q) and properties (P) are read for claims (in those, `"claims"` is a key of the entity object
    only); other entities such as lexemes, whose senses nest their own claims, come back without any.
    """
    eid = _top_level_id(line)
    if eid is None:
        return None
    claims = _CLAIMS.search(line) if eid[:1] in ("Q", "P") else None
    if claims is None:
        return eid, [], []
    return eid, _claim_ids(line, claims.end(), "P31"), _claim_ids(line, claims.end(), "P279")


def _parse_batch(batch: list[tuple[int, str]]) -> tuple[list[tuple[str, tuple, tuple]], list[int]]:
    out, bad = [], []
    for lineno, line in batch:
        ent = parse_entity(line)
        if ent is None:
            bad.append(lineno)
        elif ent[1] or ent[2]:
            out.append((ent[0], tuple(ent[1]), tuple(ent[2])))
    return out, bad


def _batches(lines: Iterator[tuple[int, str]], size: int = 2000) -> Iterator[list[tuple[int, str]]]:
    batch = []
    for item in lines:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ClassResolver:
    """Nearest mapped class through P279 edges (BFS, memoised per class)."""

    def __init__(self, subclass_of: dict[str, tuple[str, ...]], mapping: dict[str, str] | None = None):
        self.subclass_of = subclass_of
        self.mapping = mapping if mapping is not None else class_types()
        self.memo: dict[str, tuple[int, int, str | None, str | None]] = {}

    def resolve(self, cls: str) -> tuple[int, int, str | None, str | None]:
        """(distance, priority, type, matched class) for one class; type None if nothing maps."""
        hit = self.memo.get(cls)
        if hit is not None:
            return hit
        best: tuple[int, int, str | None, str | None] = (MAX_DEPTH + 1, 99, None, None)
        seen = {cls}
        queue = deque([(cls, 0)])
        while queue:
            node, dist = queue.popleft()
            if dist > best[0] or dist > MAX_DEPTH:
                break
            etype = self.mapping.get(node)
            if etype is not None:
                cand = (dist, TYPE_PRIORITY.index(etype), etype, node)
                best = min(best, cand, key=lambda b: (b[0], b[1]))
                continue
            for parent in self.subclass_of.get(node, ()):
                if parent not in seen:
                    seen.add(parent)
                    queue.append((parent, dist + 1))
        self.memo[cls] = best
        return best

    def item_type(self, classes: tuple[str, ...]) -> tuple[str | None, str | None]:
        best = min((self.resolve(c) for c in classes), key=lambda b: (b[0], b[1]), default=None)
        if best is None or best[2] is None:
            return None, None
        return best[2], best[3]


def build_types(cfg: TypesConfig) -> dict:
    """Stream the dump once, write OUT (qid, type, class) sorted by qid; returns counts.

    Memory: P31 edges of every item are kept until the P279 graph is complete (a class can come after its
    instances in the dump), as two arrays of 32-bit Q numbers: ~8 bytes per edge, ~1 GB for a full dump's
    ~120M edges, where a dict of tuples of strings took ~20 GB. The P279 graph (a few million edges) stays a
    dict of strings for the resolver.
    """
    from array import array

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from eat.console import make_progress
    from eat.io import atomic_path

    if not cfg.wikidata.is_file():
        raise UserError("Wikidata dump not found", path=cfg.wikidata)
    if cfg.out.exists() and not cfg.overwrite:  # hours of work: never replaced silently
        raise UserError("output table exists; pass --overwrite or choose another --out", path=cfg.out)
    from eat.io import check_writable

    check_writable(cfg.out.resolve().parent)  # before hours of reading the Wikidata dump
    edge_item, edge_class = (
        array("I"),
        array("I"),
    )  # item Q number, P31 class Q number; an item's edges adjacent
    subclass_of: dict[str, tuple[str, ...]] = {}
    entities = bad = 0
    lines = iter_entity_lines(cfg.wikidata)
    pool = mp.get_context("spawn").Pool(cfg.workers) if cfg.workers > 1 else None
    try:
        results = (
            pool.imap(_parse_batch, _batches(lines), chunksize=1)
            if pool
            else map(_parse_batch, _batches(lines))
        )
        with make_progress() as progress:
            bar = progress.add_task("wikidata entities", total=None, unit="entities")
            for batch_out, batch_bad in results:
                for qid, p31, p279 in batch_out:
                    if p31 and qid[0] == "Q":  # properties are never Wikipedia articles
                        item = int(qid[1:])
                        for cls in p31:
                            if cls[:1] == "Q" and cls[1:].isdigit():
                                edge_item.append(item)
                                edge_class.append(int(cls[1:]))
                    if p279:
                        subclass_of[qid] = p279
                bad += len(batch_bad)
                n = len(batch_out)
                entities += n
                progress.advance(bar, n)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if entities == 0:
        raise UserError(
            "no entity with P31/P279 claims found: expected a Wikidata JSON dump, one entity per line "
            f"(latest-all.json.gz){f'; {bad:,} lines could not be read' if bad else ''}",
            path=cfg.wikidata,
        )
    if bad:
        log.warning("%s: %s lines were not entities and were skipped", cfg.wikidata, f"{bad:,}")
    resolver = ClassResolver(subclass_of)
    by_class: dict[int, tuple[int, int, str | None, str | None]] = {}  # resolver answers by Q number
    out_item, out_type, out_class = array("I"), array("B"), array("I")
    i, n_edges = 0, len(edge_item)
    while i < n_edges:
        item, best = edge_item[i], None
        while (
            i < n_edges and edge_item[i] == item
        ):  # first-listed (preferred) class wins ties, as in item_type
            cls = edge_class[i]
            hit = by_class.get(cls)
            if hit is None:
                hit = by_class[cls] = resolver.resolve(f"Q{cls}")
            if best is None or (hit[0], hit[1]) < (best[0], best[1]):
                best = hit
            i += 1
        if best is not None and best[2] is not None:
            out_item.append(item)
            out_type.append(TYPE_PRIORITY.index(best[2]))
            out_class.append(int(best[3][1:]))
    del edge_item, edge_class
    order = pc.sort_indices(pa.array(out_item, pa.uint32()))
    number = pa.array(out_item, pa.uint32()).take(order)
    codes = pa.array(out_type, pa.uint8()).take(order)

    def q_ids(numbers: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(pa.scalar("Q"), pc.cast(numbers, pa.string()), "")

    table = pa.table(
        {
            "qid": q_ids(number),
            "type": pa.DictionaryArray.from_arrays(codes, pa.array(TYPE_PRIORITY)).dictionary_decode(),
            "class": q_ids(pa.array(out_class, pa.uint32()).take(order)),
        }
    )
    with atomic_path(cfg.out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    counts = {"entities_with_p31_or_p279": entities, "typed": len(table), "unparsable_lines": bad}
    for code, t in enumerate(TYPE_PRIORITY):
        counts[t] = out_type.count(code)
    log.info(f"typed {len(table):,} items ({', '.join(f'{t} {counts[t]:,}' for t in TYPE_PRIORITY)})")
    return counts
