"""Question sets made from a corpus's own pages, with gold answers and evidence (issue 13).

Two corpora:

- ``corpus``: the embedded default (Wikipedia summaries and World Factbook pages). Kinds:
  ``wiki`` (a fact a summary states), ``factbook`` (a field of a country page),
  ``two_hop`` (one page names an entity whose own page holds the answer) and
  ``unanswerable`` (looks like the others; no page states it).
- ``pydocs``: the Python 3.11 documentation built into a ZIM with ``webqa corpus build``.
  Kinds: ``default`` (a parameter's default value in a signature), ``module`` (which
  module a title describes), ``version`` ("New in version X.Y" of a function, class or
  module) and ``unanswerable`` (names not in the 3.11 docs).

Rows have ../shared/eval/dev.jsonl's schema (id, question, answers, answerable, sources,
evidence) plus ``kind`` and ``split``. Nothing is read from dev.jsonl. Every answerable
question is checked before it is kept: its first gold answer occurs in the evidence, the
evidence in the page text the browser shows (the page fetched from the ZIM through
``ZimWeb`` and rendered by ``webqa.browser.page``), a two-hop question's bridge on its
first page, and no gold answer is too loose to grade by containment or occurs in the
question. Unanswerable questions are checked against every page's text.

The id is a hash of the fact a question asks (not of its wording); within each kind the
40% of ids whose hashes sort first are ``dev``, the rest ``heldout``, so the same
generation gives the same split. Tune on dev only; heldout is for reporting.

    python benchmarks/gen_questions.py corpus          # $WEBQA_HOME/corpus/webqa.zim

    # the docs: `apt-get download python3.11-doc` (Debian 12), then
    dpkg-deb -x python3.11-doc_*_all.deb /tmp/pydocs/src
    webqa corpus build /tmp/pydocs/src/usr/share/doc/python3.11/html -o /tmp/pydocs/pydocs.zim
    python benchmarks/gen_questions.py pydocs /tmp/pydocs/src/usr/share/doc/python3.11/html \
        --zim /tmp/pydocs/pydocs.zim
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import norm  # noqa: E402  (the grader's normalisation: what "occurs" means)

from webqa.browser.page import page_from_document  # noqa: E402
from webqa.errors import WebQAError  # noqa: E402
from webqa.text import STOP_WORDS, split_sentences  # noqa: E402
from webqa.web.corpus import (  # noqa: E402
    FACTBOOK_SUFFIX,
    FactbookCountry,
    WikiSummary,
    corpus_articles,
    factbook_names,
)
from webqa.web.zimweb import ZimWeb  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "questions"
SEED = 13
TRAIN_SEED = 14  # the training questions' draw (--train)
DEV_SHARE = 40  # percent of each kind in dev; the rest is heldout
MAX_HTML_BYTES = 8 << 20  # a larger documentation file is skipped, never parsed
# Golds that would match nearly any answer when graded by containment.
_LOOSE = frozenset({"none", "true", "false", "yes", "one", "two", "three", "city", "country"})


@dataclass
class Candidate:
    """A question before its id and split: what it asks, and how to check it."""

    kind: str
    group: str  # the template family (for stratified sampling)
    key: str  # the fact it asks: fixes the id, and so the split
    question: str
    answers: list[str]
    sources: list[tuple[str, str, str]]  # (corpus, page title, ZIM path), in hop order
    evidence: str  # on the last source's page
    bridge: str = ""  # on the first source's page: names the entity of the next hop
    answerable: bool = True
    entity: str = ""  # at most `per_entity` questions of a kind about one entity
    sourced: str = ""  # the same question naming its source (Factbook questions)


# -------------------------------------------------------------------------- checks


def split_ids(ids: Iterable[str]) -> dict[str, str]:
    """``dev`` for the DEV_SHARE% of ``ids`` (one kind's) whose hashes come first, the rest
    ``heldout``: a fixed share, and the same split whenever the same ids are made."""
    ranked = sorted(set(ids), key=lambda qid: hashlib.sha256(qid.encode()).hexdigest())
    n_dev = round(len(ranked) * DEV_SHARE / 100)
    return {qid: "dev" if i < n_dev else "heldout" for i, qid in enumerate(ranked)}


def question_id(prefix: str, kind: str, key: str) -> str:
    return f"{prefix}-{kind}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def loose(gold: str) -> bool:
    """Whether ``gold`` is too short or common to grade an answer by containment."""
    g = norm(gold)
    if len(g) < 2 or not re.search(r"\w", g) or g in STOP_WORDS or g in _LOOSE:
        return True
    return len(g) == 2 and g.isalnum()  # "36" is in "1936", "us" in "thus"


class Pages:
    """Page text as the browser shows it: fetched from the ZIM and rendered by webqa."""

    def __init__(self, web: ZimWeb) -> None:
        self.web = web
        self._plain: dict[str, str] = {}
        self._title: dict[str, str] = {}

    def _load(self, path: str) -> None:
        if path in self._plain:
            return
        try:
            doc = self.web.fetch(self.web.url_for(path))
        except WebQAError:
            self._plain[path], self._title[path] = "", ""
            return
        page = page_from_document(doc)
        self._plain[path], self._title[path] = norm(page.plain), doc.title

    def plain(self, path: str) -> str:
        """The page's rendered text, normalized ("" if the ZIM has no such page)."""
        self._load(path)
        return self._plain[path]

    def title(self, path: str) -> str:
        self._load(path)
        return self._title[path]


def problem(c: Candidate, pages: Pages) -> str | None:
    """Why ``c`` cannot be used as it is, or None."""
    if not c.answerable:
        return "an unanswerable question with answers" if c.answers else None
    if not c.answers:
        return "no gold answer"
    gold = c.answers[0]
    if loose(gold):
        return f"gold {gold!r} too loose to grade"
    if gold_in_question(c, gold):
        return f"gold {gold!r} is in the question"
    if norm(c.answers[0]) not in norm(c.evidence):
        return "gold not in the evidence"
    if norm(c.evidence) not in pages.plain(c.sources[-1][2]):
        return "evidence not on the page"
    if c.bridge and norm(c.bridge) not in pages.plain(c.sources[0][2]):
        return "bridge not on the first page"
    return None


def gold_in_question(c: Candidate, gold: str) -> bool:
    """Whether an answer that only repeats the question would contain ``gold``."""
    return any(norm(gold) in norm(q) for q in (c.question, c.sourced) if q)


def keep_gradable(c: Candidate) -> None:
    """Drop the other gold answers (variants) that are too loose or in the question."""
    c.answers = c.answers[:1] + [
        g for g in c.answers[1:] if not loose(g) and not gold_in_question(c, g)
    ]


def pick(
    candidates: Sequence[Candidate],
    quotas: Mapping[str, int],
    rng: random.Random,
    pages: Pages,
    *,
    per_entity: int = 2,
    drops: Counter[str] | None = None,
) -> list[Candidate]:
    """Up to ``quotas[group]`` checked candidates of each group, drawn at random (seeded).

    A fact (key) and a question text are used once; one entity gets at most
    ``per_entity`` questions of one kind.
    """
    by_group: dict[str, list[Candidate]] = defaultdict(list)
    for c in candidates:
        by_group[c.group].append(c)
    chosen: list[Candidate] = []
    keys: set[str] = set()
    texts: set[str] = set()
    per: Counter[tuple[str, str]] = Counter()
    for group in sorted(quotas):
        pool = sorted(by_group.get(group, []), key=lambda c: c.key)
        rng.shuffle(pool)
        taken = 0
        for c in pool:
            if taken >= quotas[group]:
                break
            if c.key in keys or norm(c.question) in texts:
                continue
            if c.entity and per[c.kind, c.entity] >= per_entity:
                continue
            keep_gradable(c)
            why = problem(c, pages)
            if why is not None:
                if drops is not None:
                    drops[f"{group}: {why}"] += 1
                continue
            keys.add(c.key)
            texts.add(norm(c.question))
            per[c.kind, c.entity] += 1
            chosen.append(c)
            taken += 1
    return chosen


def rows(prefix: str, chosen: Iterable[Candidate]) -> list[dict[str, Any]]:
    """The question file rows (dev.jsonl's schema plus kind and split)."""
    out = []
    chosen = list(chosen)
    ids = [question_id(prefix, c.kind, c.key) for c in chosen]
    splits: dict[str, str] = {}
    for kind in {c.kind for c in chosen}:
        splits.update(split_ids(i for i, c in zip(ids, chosen, strict=True) if c.kind == kind))
    for qid, c in zip(ids, chosen, strict=True):
        sources = [{"corpus": corpus, "title": title} for corpus, title, _path in c.sources]
        out.append(
            {
                "id": qid,
                "question": c.question,
                "answers": c.answers,
                "answerable": c.answerable,
                "sources": sources,
                "evidence": c.evidence,
                "kind": c.kind,
                "split": splits[qid],
            }
        )
    # in hash order: the kinds mixed, so that the first n rows (--limit n) sample them all
    return sorted(out, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())


def write_sets(prefix: str, table: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """Write ``<prefix>_dev.jsonl`` and ``<prefix>_heldout.jsonl``; return the counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"dev": 0, "heldout": 0})
    for split in ("dev", "heldout"):
        path = out_dir / f"{prefix}_{split}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for row in table:
                if row["split"] == split:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    counts[row["kind"]][split] += 1
    return {kind: dict(c) for kind, c in sorted(counts.items())}


def write_train(prefix: str, table: list[dict[str, Any]], out_dir: Path) -> int:
    """Write ``<prefix>_train.jsonl``: the rows whose fact (id) neither the dev nor the
    heldout file asks; print the counts per kind."""
    taken: set[str] = set()
    for split in ("dev", "heldout"):
        with open(out_dir / f"{prefix}_{split}.jsonl", encoding="utf-8") as f:
            taken |= {json.loads(line)["id"] for line in f if line.strip()}
    kept = [{**row, "split": "train"} for row in table if row["id"] not in taken]
    with open(out_dir / f"{prefix}_train.jsonl", "w", encoding="utf-8") as f:
        for row in kept:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = Counter(row["kind"] for row in kept)
    print(
        json.dumps(
            {
                "corpus": prefix,
                "train": dict(sorted(counts.items())),
                "overlap": len(table) - len(kept),
            },
            indent=2,
        )
    )
    return 0


def phrase(rng: random.Random, templates: Sequence[str], **values: str) -> str:
    text = rng.choice(templates).format(**values)
    return text[:1].upper() + text[1:]


_THE = re.compile(
    r"(Islands|Bank|Strip|Republic|Kingdom|States|Emirates|Territory|Territories|Ocean|Sea"
    r"|Union|World|Netherlands|Philippines|Maldives|Seychelles|Comoros|Bahamas|Gambia)$"
)


def the_name(name: str) -> str:
    """A country's name as a sentence uses it: "the Netherlands", "the Cook Islands"."""
    name = re.sub(r"\s*\([^)]*\)", "", name)  # "Falkland Islands (Islas Malvinas)"
    if name.lower().startswith("the ") or not _THE.search(name):
        return name
    return "the " + name


# ---------------------------------------------------------- the embedded corpus: data

_TAG = re.compile(r"<[^>]+>")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def plain_html(fragment: str) -> str:
    """A Factbook value as the page shows it on one line (tags out, entities decoded)."""
    return " ".join(html.unescape(_TAG.sub(" ", _BR.sub("\n", fragment))).split())


@dataclass
class Country:
    """A Factbook page: its name, other names, title, ZIM path and fields."""

    name: str
    names: list[str]
    title: str
    path: str
    data: Mapping[str, Any]

    @property
    def sovereign(self) -> bool:
        """Whether the page is a country's (its Independence field gives a date or an
        old state's history), not a territory's, an ocean's or the World's."""
        text = self.value("Government", "Independence")
        return bool(text) and not text.lower().startswith("none")

    def value(self, section: str, name: str, sub: str | None = None) -> str:
        node = self.data.get(section, {})
        node = node.get(name) if isinstance(node, Mapping) else None
        if sub is not None:
            node = node.get(sub) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            node = node.get("text")
        return plain_html(node) if isinstance(node, str) else ""

    def line(self, section: str, name: str, sub: str | None = None) -> str:
        """The field's line as the page renders it (a sub-field as "label: value"), with
        the field's heading before it when it is the field's first line."""
        value = self.value(section, name, sub)
        if not value:
            return ""
        if sub is None:
            return f"{name}\n{value}"
        label = sub.split(":")[-1].strip()
        text = value if value.lower().startswith(label.lower() + ":") else f"{label}: {value}"
        fields = self.data.get(section, {}).get(name, {})
        first = next(iter(fields), None) if isinstance(fields, Mapping) else None
        return f"{name}\n{text}" if first == sub else text


@dataclass
class Person:
    """A Wikipedia summary of a person whose description reads "<demonym> <occupation>
    (<years>)"."""

    title: str
    path: str
    description: str
    born: str
    died: str  # "" for someone living
    demonym: str  # "" when the description starts otherwise
    occupation: str  # "" unless short and single


@dataclass
class CorpusData:
    """The embedded corpus's records, indexed for making and checking questions."""

    wiki: dict[str, WikiSummary]
    wiki_paths: dict[str, str]
    countries: list[Country]
    by_name: dict[str, Country]  # every name of a country -> its page
    demonyms: dict[str, Country]  # adjectives naming exactly one country
    people: dict[str, Person]
    texts: list[str]  # every page's text, normalized (for absence checks)
    page_index: dict[str, int]  # ZIM path -> index in texts
    words: dict[str, set[int]]  # word -> indexes of texts holding it

    def pages_with(self, phrase_: str) -> list[int]:
        """Indexes of the pages whose text holds ``phrase_`` (normalized)."""
        words = re.findall(r"\w+", norm(phrase_))
        if not words:
            return []
        ids = set.intersection(*(self.words.get(w, set()) for w in words))
        needle = norm(phrase_)
        return [i for i in ids if needle in self.texts[i]]


_LIFE = re.compile(
    r"^(?P<desc>[^()]+?) \((?:born (?P<b1>\d{4})|(?P<b>\d{4})\s*[–-]\s*(?P<d>\d{4}))\)$"
)


_GROUP = re.compile(
    r"\b(band|group|duo|trio|quartet|family|dynasty|team|company|club|troupe|ensemble"
    r"|orchestra|house|brothers|sisters)\b",
    re.IGNORECASE,
)


def parse_person(s: WikiSummary, path: str, demonyms: Mapping[str, Country]) -> Person | None:
    """A person from a summary's description, or None if it is not one of that form."""
    if s.topic != "People" or "(" in s.title or "," in s.title:
        return None
    m = _LIFE.match(s.description.strip())
    if not m:
        return None
    desc = m.group("desc").strip()
    if _GROUP.search(desc):
        return None  # a band, a family, a dynasty: not one person
    words = desc.split()
    demonym = ""
    for n in (3, 2, 1):
        if len(words) > n and " ".join(words[:n]) in demonyms:
            demonym = " ".join(words[:n])
            break
    rest = desc[len(demonym) :].strip() if demonym else ""
    occupation = rest if rest and re.fullmatch(r"[a-z]+(?: [a-z]+)?", rest) else ""
    return Person(
        s.title,
        path,
        s.description.strip(),
        m.group("b1") or m.group("b"),
        m.group("d") or "",
        demonym,
        occupation,
    )


def load_corpus_data(
    wiki: Sequence[WikiSummary], factbook: Sequence[FactbookCountry]
) -> CorpusData:
    """The records indexed for generation, with the ZIM paths the corpus gives them."""
    articles, _redirects = corpus_articles(wiki, factbook)
    wiki_paths = {a.title: a.path for a in articles if a.path.startswith("wiki/")}
    by_title = {a.title: a for a in articles}
    countries = []
    for record in factbook:
        name, others, _registry = factbook_names(record)
        article = by_title.get(name + FACTBOOK_SUFFIX)
        if article is None:
            continue
        names = [name] + [o for o in others if o != name]
        countries.append(Country(name, names, article.title, article.path, record.data))
    by_name: dict[str, Country] = {}
    for c in countries:
        for n in c.names:
            by_name.setdefault(n, c)
    adjectives: dict[str, set[str]] = defaultdict(set)
    for c in countries:
        raw = c.value("People and Society", "Nationality", "adjective")
        for part in re.split(r"[;,/]| or ", re.sub(r"\([^)]*\)", "", raw)):
            if part.strip():
                adjectives[part.strip()].add(c.name)
    cmap = {c.name: c for c in countries}
    demonyms = {a: cmap[next(iter(n))] for a, n in adjectives.items() if len(n) == 1}
    people = {}
    for s in wiki:
        p = parse_person(s, wiki_paths.get(s.title, ""), demonyms)
        if p is not None and p.path:
            people[s.title] = p
    texts = [norm(a.text) for a in articles]
    words: dict[str, set[int]] = defaultdict(set)
    for i, text in enumerate(texts):
        for w in set(re.findall(r"\w+", text)):
            words[w].add(i)
    return CorpusData(
        {s.title: s for s in wiki},
        wiki_paths,
        countries,
        by_name,
        demonyms,
        people,
        texts,
        {a.path: i for i, a in enumerate(articles)},
        words,
    )


# ------------------------------------------------------------ Factbook facts


@dataclass
class Fact:
    """A field's answer on a Factbook page: golds (first in the evidence), evidence."""

    answers: list[str]
    evidence: str


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith(("ss", "is", "us")) else word


def fact_capital(c: Country) -> Fact | None:
    v = c.value("Government", "Capital", "name")
    gold = re.split(r"[;(]", v)[0].strip()
    if not gold or len(gold) > 40 or re.search(r"\b(none|no official)\b", gold, re.I):
        return None
    return Fact([gold], c.line("Government", "Capital", "name"))


def fact_population(c: Country) -> Fact | None:
    m = re.match(r"^(\d{1,3}(?:,\d{3})+)\b", c.value("People and Society", "Population", "total"))
    if not m:
        return None
    return Fact(
        [m.group(1), m.group(1).replace(",", "")],
        c.line("People and Society", "Population", "total"),
    )


def fact_area(c: Country) -> Fact | None:
    m = re.match(r"^(\d{1,3}(?:,\d{3})+) sq km", c.value("Geography", "Area", "total "))
    if not m:
        return None
    return Fact([m.group(1), m.group(1).replace(",", "")], c.line("Geography", "Area", "total "))


_IRREGULAR = {
    "kronor": "krona",
    "kroner": "krone",
    "kronur": "krona",
    "maloti": "loti",
    "meticais": "metical",
    "colones": "colon",
    "quetzales": "quetzal",
    "leke": "lek",
    "leva": "lev",
    "lei": "leu",
    "koruny": "koruna",
    "zlotych": "zloty",
}


def fact_currency(c: Country) -> Fact | None:
    m = re.match(
        r"^([^()]+?) \(([A-Z]{3})\) per US dollar", c.value("Economy", "Exchange rates", "Currency")
    )
    if not m:
        return None
    if " or " in m.group(1):
        return None
    *head, last = m.group(1).split()
    one = _IRREGULAR.get(last, _singular(last))  # "kronor" -> "krona"
    golds = [" ".join([*head, one if last.startswith(one) else last])]
    golds += [" ".join([*head, one]), m.group(2)] + ([one] if head and len(one) >= 4 else [])
    return Fact(list(dict.fromkeys(golds)), c.line("Economy", "Exchange rates", "Currency"))


def fact_highest(c: Country) -> Fact | None:
    v = c.value("Geography", "Elevation", "highest point")
    m = re.match(r"^([^;(]+?) -?[\d,.]+ m$", v)
    if not m:
        return None
    gold = m.group(1).strip()
    golds = [gold]
    short = re.sub(r"^(Mount|Mont|Monte|Pico|Cerro|Mt\.) ", "", gold)
    if short != gold and len(short) >= 4 and short[0].isupper():
        golds.append(short)
    return Fact(golds, c.line("Geography", "Elevation", "highest point"))


_MONTHS = "January February March April May June July August September October November December"


def fact_independence(c: Country) -> Fact | None:
    v = c.value("Government", "Independence")
    m = re.match(rf"^(\d{{1,2}}) ({'|'.join(_MONTHS.split())}) (\d{{4}}) \(from ", v)
    if not m:
        return None
    day, month, year = m.groups()
    return Fact(
        [f"{day} {month} {year}", f"{month} {day}, {year}"], c.line("Government", "Independence")
    )


_EXPANSIONS = {"the UK": ["United Kingdom", "Britain"], "the US": ["United States"]}


def fact_independence_from(c: Country) -> Fact | None:
    m = re.search(r"\(from (the )?([A-Z][^();,]+?)\)", c.value("Government", "Independence"))
    if not m or len(m.group(2)) > 30:
        return None
    gold = m.group(2)
    if len(gold) <= 3 and m.group(1):
        gold = "the " + gold  # "the UK": "UK" alone is in too many words
    return Fact([gold, *_EXPANSIONS.get(gold, [])], c.line("Government", "Independence"))


def fact_language(c: Country) -> Fact | None:
    v = c.value("People and Society", "Languages", "Languages")
    parts = [p for p in v.split(",") if "(official" in p]
    official = [re.sub(r"\s*\(official.*$", "", p).strip() for p in parts]
    if len(official) != 1 or not re.fullmatch(r"[A-Z][a-z]+(?: [A-Z][a-z]+)?", official[0]):
        return None
    return Fact(official, c.line("People and Society", "Languages", "Languages"))


def fact_export_partner(c: Country) -> Fact | None:
    m = re.match(r"^([A-Z][A-Za-z .'-]+?) \d+%", c.value("Economy", "Exports - partners"))
    if not m:
        return None
    gold = m.group(1)
    golds = [gold, "United States"] if gold == "USA" else [gold]
    return Fact(golds, c.line("Economy", "Exports - partners"))


def fact_export_commodity(c: Country) -> Fact | None:
    m = re.match(r"^([a-z][a-z /-]+?)(?:,| \()", c.value("Economy", "Exports - commodities"))
    if not m:
        return None
    return Fact([m.group(1)], c.line("Economy", "Exports - commodities"))


def fact_internet_code(c: Country) -> Fact | None:
    v = c.value("Communications", "Internet country code")
    if not re.fullmatch(r"\.[a-z]{2}", v):
        return None
    return Fact([v], c.line("Communications", "Internet country code"))


def fact_symbol(c: Country) -> Fact | None:
    v = re.sub(r"\([^)]*\)", "", c.value("Government", "National symbol(s)")).split(";")[0]
    items = [i.strip() for i in v.split(",") if i.strip()]
    if not items or any(len(i) > 30 for i in items):
        return None
    return Fact(items, c.line("Government", "National symbol(s)"))


def fact_anthem(c: Country) -> Fact | None:
    m = re.match(r'^"([^"]{4,60})"', c.value("Government", "National anthem(s)", "title"))
    if not m:
        return None
    return Fact([m.group(1)], c.line("Government", "National anthem(s)", "title"))


def fact_median_age(c: Country) -> Fact | None:
    m = re.match(r"^(\d\d\.\d) years", c.value("People and Society", "Median age", "total"))
    if not m:
        return None
    return Fact([m.group(1)], c.line("People and Society", "Median age", "total"))


def fact_airports(c: Country) -> Fact | None:
    m = re.match(r"^(\d{3,}|\d{1,3}(?:,\d{3})+) \(", c.value("Transportation", "Airports"))
    if not m:
        return None
    return Fact([m.group(1)], c.line("Transportation", "Airports"))


# group -> (fact, plain phrasings, phrasings naming the Factbook; no plain ones: a figure
# the Wikipedia summary may state differently always names its source)
FACTBOOK_FIELDS: dict[str, tuple[Callable[[Country], Fact | None], list[str], list[str]]] = {
    "capital": (
        fact_capital,
        [
            "What is the capital of {c}?",
            "Which city is the capital of {c}?",
            "Name the capital city of {c}.",
        ],
        [
            "According to the World Factbook, what is the capital of {c}?",
            "What does the World Factbook give as the capital of {c}?",
        ],
    ),
    "population": (
        fact_population,
        [],
        [
            "According to the World Factbook, what is the total population of {c}?",
            "What total population does the World Factbook give for {c}?",
        ],
    ),
    "area": (
        fact_area,
        [],
        [
            "According to the World Factbook, what is the total area of {c}?",
            "How large is {c} in square kilometres, according to the World Factbook?",
        ],
    ),
    "currency": (
        fact_currency,
        ["What is the currency of {c}?", "Which currency is used in {c}?"],
        ["According to the World Factbook, what currency does {c} use?"],
    ),
    "highest_point": (
        fact_highest,
        ["What is the highest point in {c}?", "Which is the highest peak of {c}?"],
        ["According to the World Factbook, what is the highest point of {c}?"],
    ),
    "independence": (
        fact_independence,
        ["On what date did {c} become independent?", "When did {c} gain its independence?"],
        ["According to the World Factbook, on what date did {c} become independent?"],
    ),
    "independence_from": (
        fact_independence_from,
        [
            "From which country did {c} gain independence?",
            "{c} became independent from which state?",
        ],
        ["According to the World Factbook, from whom did {c} gain independence?"],
    ),
    "language": (
        fact_language,
        ["What is the official language of {c}?", "Which language is official in {c}?"],
        ["According to the World Factbook, what is the official language of {c}?"],
    ),
    "export_partner": (
        fact_export_partner,
        [],
        [
            "According to the World Factbook, which country is {c}'s largest export partner?",
            "Which country buys the largest share of {c}'s exports, per the World Factbook?",
        ],
    ),
    "export_commodity": (
        fact_export_commodity,
        [],
        [
            "Which commodity does the World Factbook list first among {c}'s exports?",
            "According to the World Factbook, what is the first-listed export commodity of {c}?",
        ],
    ),
    "internet_code": (
        fact_internet_code,
        ["What is the internet country code of {c}?", "Which top-level domain does {c} use?"],
        ["According to the World Factbook, what is {c}'s internet country code?"],
    ),
    "national_symbol": (
        fact_symbol,
        ["What is a national symbol of {c}?", "Name one of the national symbols of {c}."],
        ["According to the World Factbook, what is a national symbol of {c}?"],
    ),
    "anthem": (
        fact_anthem,
        [
            "What is the title of the national anthem of {c}?",
            "What is {c}'s national anthem called?",
        ],
        ["According to the World Factbook, what is the title of {c}'s national anthem?"],
    ),
    "median_age": (
        fact_median_age,
        [],
        [
            "According to the World Factbook, what is the median age in {c}?",
            "What median age does the World Factbook give for the population of {c}?",
        ],
    ),
    "airports": (
        fact_airports,
        [],
        ["According to the World Factbook, how many airports does {c} have?"],
    ),
}


def factbook_candidates(data: CorpusData, rng: random.Random) -> list[Candidate]:
    out = []
    for c in data.countries:
        if "," in c.name:
            continue  # "Baker Island, Howland Island, ...": not a name to ask about
        for group, (get, plain, sourced) in FACTBOOK_FIELDS.items():
            fact = get(c)
            if fact is None:
                continue
            q_sourced = phrase(rng, sourced, c=the_name(c.name))
            q_plain = phrase(rng, plain, c=the_name(c.name)) if plain else ""
            out.append(
                Candidate(
                    "factbook",
                    group,
                    f"factbook:{c.name}:{group}",
                    q_plain or q_sourced,
                    fact.answers,
                    [("factbook", c.title, c.path)],
                    fact.evidence,
                    entity=c.name,
                    sourced=q_sourced if q_plain else "",
                )
            )
    return out


def balance_sources(chosen: list[Candidate], rng: random.Random) -> None:
    """Half the Factbook questions name the Factbook: those that must, then a random
    choice of the others (each candidate carries both phrasings)."""
    want = len(chosen) // 2
    named = sum(not c.sourced for c in chosen)  # only a sourced phrasing exists
    free = [c for c in chosen if c.sourced]
    rng.shuffle(free)
    for c in free[: max(0, want - named)]:
        c.question = c.sourced


# ------------------------------------------------------------ Wikipedia facts


def first_sentence(s: WikiSummary) -> str:
    sentences = split_sentences(s.extract.split("\n")[0])
    return sentences[0].strip() if sentences else ""


def sentence_with(s: WikiSummary, pattern: re.Pattern[str]) -> tuple[str, re.Match[str]] | None:
    for para in s.extract.split("\n"):
        for sent in split_sentences(para):
            m = pattern.search(sent)
            if m:
                return sent.strip(), m
    return None


# Country names that are also common words or other places ("New Guinea", "Lake Chad").
_AMBIGUOUS_COUNTRIES = frozenset(
    {
        "Georgia",
        "Jordan",
        "Chad",
        "Niger",
        "Guinea",
        "Congo",
        "Dominica",
        "Turkey",
        "Jersey",
        "Man",
        "Ireland",
        "Macedonia",
        "Victoria",
        "Wales",
        "Holy See",
    }
)


def countries_in(text: str, data: CorpusData) -> list[Country]:
    """The distinct countries ``text`` names (longest names first, no overlaps)."""
    found: list[Country] = []
    taken: list[tuple[int, int]] = []
    for name in sorted(data.by_name, key=len, reverse=True):
        if name in _AMBIGUOUS_COUNTRIES or len(name) < 4:
            continue
        for m in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append(m.span())
            country = data.by_name[name]
            if country not in found:
                found.append(country)
    return found


_PLACE = re.compile(
    r"\bis (?:a|an|the) [^.;]*?\b(city|town|capital|port|river|lake|mountain range|island"
    r"|municipality|village|mountain|volcano|desert|peninsula)\b[^.;]*?\bin\b"
)
_CAPITAL_OF = re.compile(
    r"^(?P<t>.+?) is the capital(?: city)?(?: and (?:the )?(?:largest|most populous) city)?"
    r" of (?:the )?(?P<y>[A-Z][\w'’-]*(?:(?: and| of| de)? [A-Z][\w'’-]*)*)"
    r"(?=[,.;]| and\b| with\b|$)"
)
_FOUNDED = re.compile(r"\b(?:was|were) (?:founded|established) in (\d{4})\b")
_WORK_VERBS = {
    "wrote": "novel novella book poem play story essay epic".split(),
    "composed": "opera symphony ballet concerto oratorio requiem suite".split(),
    "painted": "painting fresco mural portrait".split(),
}
_WORK = re.compile(
    r"^(?P<t>.+?) is an? [^.;]*?\b(?P<w>"
    + "|".join(w for ws in _WORK_VERBS.values() for w in ws)
    + r")\b[^.;]*?\bby\b"
)


def place_country(s: WikiSummary, data: CorpusData) -> tuple[str, Country] | None:
    """The sentence and country of "<Title> is a city ... in <Country>", if one only."""
    sent = first_sentence(s)
    if not sent.startswith(s.title + " ") or not _PLACE.search(sent):
        return None
    found = countries_in(sent, data)
    if len(found) != 1 or found[0].name == s.title or s.title in found[0].names:
        return None
    if not found[0].sovereign:
        return None  # "Jericho ... in the West Bank": not "which country"
    return sent, found[0]


def work_creator(s: WikiSummary, data: CorpusData) -> tuple[str, str, Person] | None:
    """(sentence, verb, creator) for "<Title> is a novel ... by <person with a page>"."""
    sent = first_sentence(s)
    m = _WORK.match(sent)
    if not m or m.group("t") != s.title or s.topic == "People":
        return None
    after = sent[m.end() :]
    people = [p for t, p in data.people.items() if t in sent]
    if len(people) != 1 or people[0].title not in after:
        return None
    verb = next(v for v, ws in _WORK_VERBS.items() if m.group("w") in ws)
    return sent, verb, people[0]


WIKI_TEMPLATES = {
    "born": [
        "In what year was {t} born?",
        "What year was {t} born in?",
        "{t} was born in which year?",
    ],
    "died": [
        "In what year did {t} die?",
        "What year did {t} die in?",
        "In which year did {t} pass away?",
    ],
    "nationality": [
        "What nationality {was} {t}?",
        "{t} {was} a national of which country?",
        "Which country {was} {t} from?",
    ],
    "occupation": [
        "What {was} {t}'s profession?",
        "What {was} {t}'s occupation?",
        "What work {was} {t} known for?",
    ],
    "located_in": [
        "In which country is {t}?",
        "Which country is {t} in?",
        "{t} lies in which country?",
    ],
    "creator": ["Who {v} {t}?", "{t} is the work of which {m}?"],
    "founded": [
        "In what year was {t} founded?",
        "When was {t} established? Give the year.",
        "{t} was founded in which year?",
    ],
    "capital_of": ["What is the capital of {y}?", "Which city is the capital of {y}?"],
    "capital_reverse": [
        "{t} is the capital of which country?",
        "Of which country is {t} the capital?",
    ],
    "office": ["Who was {o} from {a} to {b}?", "Who served as {o} from {a} to {b}?"],
    "office_start": ["In what year did {t} become {o}?", "When did {t} take office as {o}?"],
}
_OFFICE = re.compile(
    r"^(?P<o>(?:[A-Z][\w-]*)(?: [A-Z][\w-]*)* of (?:the )?[A-Z][\w'’ -]*?)"
    r" from (?P<a>\d{4}) to (?P<b>\d{4})(?: \(\d{4}\s*[–-]\s*\d{4}\))?$"
)
MAKERS = {"wrote": "author", "composed": "composer", "painted": "painter"}


def surname_variant(name: str) -> list[str]:
    """[the last word of a person's name] when it can stand for them ("Austen")."""
    last = name.split()[-1]
    return [last] if re.fullmatch(r"[A-Z][a-zà-ÿ]{3,}", last) else []


def wiki_candidates(data: CorpusData, rng: random.Random) -> list[Candidate]:
    out: list[Candidate] = []

    def add(group: str, s: WikiSummary, fact: str, answers: list[str], ev: str, **v: str) -> None:
        src = [("wiki", s.title, data.wiki_paths[s.title])]
        q = phrase(rng, WIKI_TEMPLATES[group], **v)
        key = f"wiki:{s.title}:{fact}"
        out.append(Candidate("wiki", group, key, q, answers, src, ev, entity=s.title))

    for p in data.people.values():
        s, t, was = data.wiki[p.title], p.title, "was" if p.died else "is"
        add("born", s, "born", [p.born], p.description, t=t)
        if p.died:
            add("died", s, "died", [p.died], p.description, t=t)
        if p.demonym:
            country = data.demonyms[p.demonym].name
            add("nationality", s, "nationality", [p.demonym, country], p.description, t=t, was=was)
        if p.occupation:
            golds = [p.occupation] + [w for w in p.occupation.split()[1:] if len(w) >= 5]
            add("occupation", s, "occupation", golds, p.description, t=t, was=was)

    claims: dict[str, list[tuple[WikiSummary, str]]] = defaultdict(list)
    offices: dict[tuple[str, str, str], list[WikiSummary]] = defaultdict(list)
    for s in data.wiki.values():
        if "(" in s.title or s.title not in data.wiki_paths:
            continue
        sent = first_sentence(s)
        m = _CAPITAL_OF.match(sent)
        if m and m.group("t") == s.title:
            claims[m.group("y")].append((s, sent))
        m = _OFFICE.match(s.description)
        if m and s.topic == "People":
            offices[m.group("o"), m.group("a"), m.group("b")].append(s)
        if place := place_country(s, data):
            sent, country = place
            golds = [n for n in country.names if n in sent] + country.names
            add("located_in", s, "country", list(dict.fromkeys(golds)), sent, t=s.title)
        if work := work_creator(s, data):
            sent, verb, person = work
            golds = [person.title, *surname_variant(person.title)]
            add("creator", s, "creator", golds, sent, t=s.title, v=verb, m=MAKERS[verb])
        found = sentence_with(s, _FOUNDED)
        if found and found[0].startswith(s.title + " "):
            sent, m = found
            if not re.search(r"\b(which|that|who|whose)\b", sent[: m.start()]):
                add("founded", s, "founded", [m.group(1)], sent, t=s.title)
    for place, who in sorted(claims.items()):
        if len(who) != 1:
            continue  # two pages call different cities its capital
        s, sent = who[0]
        country = data.by_name.get(place)
        if country is not None:
            fb = fact_capital(country)
            if fb is None or norm(fb.answers[0]) != norm(s.title):
                continue  # the Factbook names another capital
        add("capital_of", s, f"capital-of:{place}", [s.title], sent, y=the_name(place))
        if country is not None and country.sovereign:
            golds = list(dict.fromkeys([place, *country.names]))
            add("capital_reverse", s, "capital-reverse", golds, sent, t=s.title)
    for (office, a, b), who in sorted(offices.items()):
        if len(who) != 1:
            continue
        s = who[0]
        first, rest = office.split(" ", 1)
        o = office if rest[:1].isupper() else f"{first.lower()} {rest}"  # "Prime Minister of"
        golds = [s.title, *surname_variant(s.title)]
        add("office", s, "office", golds, f"{s.title}\n{s.description}", o=o, a=a, b=b)
        add("office_start", s, "office-start", [a], s.description, t=s.title, o=o)
    return out


# ------------------------------------------------------------ two hops

# bridge group -> field -> (the fact on the country's Factbook page, question templates)
HOP_FIELDS: dict[str, dict[str, tuple[Callable[[Country], Fact | None], list[str]]]] = {
    "nationality": {
        "capital": (
            fact_capital,
            [
                "What is the capital of the home country of {x}?",
                "What is the capital city of {x}'s native country?",
            ],
        ),
        "currency": (
            fact_currency,
            [
                "What currency is used today in the home country of {x}?",
                "Which currency does {x}'s native country use?",
            ],
        ),
        "highest_point": (
            fact_highest,
            [
                "According to the World Factbook, what is the highest point of {x}'s home country?",
                "What is the highest point in the home country of {x}?",
            ],
        ),
        "internet_code": (
            fact_internet_code,
            ["What is the internet country code of {x}'s home country?"],
        ),
        "language": (fact_language, ["What is the official language of the home country of {x}?"]),
    },
    "place": {
        "currency": (
            fact_currency,
            [
                "What currency is used in the country where {x} is?",
                "Which currency is used in the country that {x} is in?",
            ],
        ),
        "capital": (
            fact_capital,
            [
                "What is the capital of the country in which {x} lies?",
                "{x} is in a country whose capital is which city?",
            ],
        ),
        "internet_code": (
            fact_internet_code,
            ["What is the internet country code of the country where {x} is?"],
        ),
        "highest_point": (
            fact_highest,
            [
                "According to the World Factbook, what is the highest point of the country "
                "where {x} is?"
            ],
        ),
    },
}
CREATOR_TEMPLATES = {
    "born": ["In what year was the {m} of {t} born?", "The {m} of {t} was born in which year?"],
    "died": ["In what year did the {m} of {t} die?"],
    "nationality": [
        "What nationality was the {m} of {t}?",
        "Which country was the {m} of {t} from?",
    ],
}


def two_hop_candidates(data: CorpusData, rng: random.Random) -> list[Candidate]:
    out: list[Candidate] = []

    def to_country(bridge: str, first: tuple[str, str, str], ev: str, x: str, c: Country) -> None:
        for name, (get, templates) in HOP_FIELDS[bridge].items():
            fact = get(c)
            if fact is None or norm(fact.answers[0]) == norm(first[1]):
                continue
            out.append(
                Candidate(
                    "two_hop",
                    f"{bridge}>{name}",
                    f"hop:{first[1]}:{name}",
                    phrase(rng, templates, x=x),
                    fact.answers,
                    [first, ("factbook", c.title, c.path)],
                    fact.evidence,
                    bridge=ev,
                    entity=c.name,
                )
            )

    for p in data.people.values():
        if p.demonym:
            who = f"the {p.occupation} {p.title}" if p.occupation else p.title
            first = ("wiki", p.title, p.path)
            to_country("nationality", first, p.description, who, data.demonyms[p.demonym])
    for s in data.wiki.values():
        if "(" in s.title or s.title not in data.wiki_paths:
            continue
        first = ("wiki", s.title, data.wiki_paths[s.title])
        if place := place_country(s, data):
            to_country("place", first, place[0], s.title, place[1])
        if work := work_creator(s, data):
            sent, verb, person = work
            facts = {"born": [person.born], "died": [person.died]}
            if person.demonym:
                facts["nationality"] = [person.demonym, data.demonyms[person.demonym].name]
            for name, golds in facts.items():
                if not golds[0]:
                    continue
                q = phrase(rng, CREATOR_TEMPLATES[name], m=MAKERS[verb], t=s.title)
                out.append(
                    Candidate(
                        "two_hop",
                        f"creator>{name}",
                        f"hop:{s.title}:creator-{name}",
                        q,
                        golds,
                        [first, ("wiki", person.title, person.path)],
                        person.description,
                        bridge=sent,
                        entity=person.title,
                    )
                )
    return out


# ------------------------------------------------------------ unanswerable

# (name, template, words none of the pages that name the person may hold)
_DETAILS = [
    (
        "mother",
        "What was the name of {t}'s mother?",
        ["mother", "son of", "daughter of", "born to", "parents"],
    ),
    ("height", "How tall {was} {t}?", ["tall", "height", "cm", "feet", "metres", "meters"]),
    ("school", "Which primary school did {t} attend?", ["school", "schooling", "educated"]),
    ("hospital", "In which hospital was {t} born?", ["hospital"]),
    ("pet", "What was the name of {t}'s dog?", ["dog", "dogs", "pet", "pets"]),
]
# (name, template, words no page that names the year may hold, years)
_FUTURE = [
    (
        "olympics",
        "Which city will host the {y} Summer Olympics?",
        ["olympic", "olympics"],
        ["2040", "2044", "2048"],
    ),
    (
        "worldcup",
        "Which country won the {y} FIFA World Cup?",
        ["world cup"],
        ["2030", "2034", "2038"],
    ),
    ("nobel", "Who won the {y} Nobel Prize in {f}?", ["nobel"], ["2031", "2033", "2035"]),
]
_NOBEL_FIELDS = ["Physics", "Chemistry", "Literature", "Peace", "Physiology or Medicine"]
# (name, template, words the country's Factbook page must not hold)
_MISSING_FIELDS = [
    ("capital", "According to the World Factbook, what is the capital of {c}?", ["capital"]),
    ("anthem", "According to the World Factbook, what is the national anthem of {c}?", ["anthem"]),
    (
        "independence",
        "According to the World Factbook, when did {c} become independent?",
        ["independence", "independent"],
    ),
    (
        "airports",
        "According to the World Factbook, how many airports does {c} have?",
        ["airport", "airports"],
    ),
    (
        "exports",
        "According to the World Factbook, what are {c}'s main export commodities?",
        ["exports - commodities", "export commodities"],
    ),
    (
        "holiday",
        "According to the World Factbook, what is the national holiday of {c}?",
        ["national holiday"],
    ),
]
MADE_UP_TEMPLATES = [
    "In what year was the {d} {o} {n} born?",
    "When was the {d} {o} {n} born? Give the year.",
    "What nationality was the {o} {n}?",
]
_HONORIFICS = frozenset(
    "sri saint st sir lord lady pope king queen prince princess don dame".split()
)


def absent(data: CorpusData, pages: Iterable[int], words: Sequence[str]) -> bool:
    """Whether none of ``words`` (phrases) occurs as a whole in any of those pages."""
    pats = [re.compile(rf"(?<!\w){re.escape(norm(w))}(?!\w)") for w in words]
    return not any(p.search(data.texts[i]) for i in pages for p in pats)


def made_up_people(data: CorpusData) -> list[tuple[str, Person]]:
    """Names that sound like the corpus's people and name nobody in it: one person's first
    name and another's surname (same nationality), never on one page together."""
    by_demonym: dict[str, list[Person]] = defaultdict(list)
    for p in sorted(data.people.values(), key=lambda p: p.title):
        if p.demonym and p.occupation and re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", p.title):
            by_demonym[p.demonym].append(p)
    out = []
    for group in by_demonym.values():
        for i, p in enumerate(group):
            other = group[(i + 1) % len(group)]
            first, last = p.title.split()[0], other.title.split()[-1]
            if other is p or norm(first) in _HONORIFICS or other.title[:2] == first[:2]:
                continue  # "Sri Ramanujan", "Joe Bardeen": too near a real name
            if data.words.get(norm(first), set()) & data.words.get(norm(last), set()):
                continue  # the two names meet on some page: maybe a real person
            out.append((f"{first} {last}", p))
    return out


def unanswerable_candidates(data: CorpusData, rng: random.Random) -> list[Candidate]:
    out: list[Candidate] = []

    def add(group: str, key: str, q: str, sources: list[tuple[str, str, str]], why: str) -> None:
        out.append(Candidate("unanswerable", group, key, q, [], sources, why, answerable=False))

    for name, p in made_up_people(data):
        q = phrase(rng, MADE_UP_TEMPLATES, d=p.demonym, o=p.occupation, n=name)
        add("made_up_person", f"none:person:{name}", q, [], f"no page names {name}")
    for p in sorted(data.people.values(), key=lambda p: p.title):
        if not p.occupation or len(p.title.split()) < 2:
            continue
        pages = data.pages_with(p.title)
        for name, template, words in _DETAILS:
            if pages and absent(data, pages, words):
                q = template.format(t=p.title, was="was" if p.died else "is")
                why = f"no page that names {p.title} says: {', '.join(words)}"
                add(
                    "unstated_detail", f"none:{p.title}:{name}", q, [("wiki", p.title, p.path)], why
                )
    for name, template, words, years in _FUTURE:
        for year in years:
            for f in _NOBEL_FIELDS if "{f}" in template else [""]:
                if absent(data, data.words.get(year, set()), words):
                    add(
                        "future_event",
                        f"none:{name}:{year}:{f}",
                        template.format(y=year, f=f),
                        [],
                        f"no page names {year} with {words[0]}",
                    )
    for c in data.countries:
        if "," in c.name:
            continue
        own = [data.page_index[c.path]] if c.path in data.page_index else []
        for name, template, words in _MISSING_FIELDS:
            if own and absent(data, own, words):
                add(
                    "missing_field",
                    f"none:{c.name}:{name}",
                    template.format(c=the_name(c.name)),
                    [("factbook", c.title, c.path)],
                    f"{c.title} has no {words[0]} field",
                )
    return out


# ------------------------------------------------------------ the embedded corpus

# Most people's years, nationality and office are only in a summary's description line
# (under its title); they are under half of the wiki kind, sentences of its text the rest.
CORPUS_QUOTAS = {
    "wiki": {
        "born": 10,
        "died": 8,
        "nationality": 10,
        "occupation": 8,
        "office": 10,
        "office_start": 6,
        "located_in": 18,
        "capital_of": 16,
        "capital_reverse": 12,
        "creator": 18,
        "founded": 4,
    },
    "factbook": {g: 9 for g in FACTBOOK_FIELDS},
    "two_hop": {
        "nationality>capital": 10,
        "nationality>currency": 10,
        "nationality>highest_point": 8,
        "nationality>internet_code": 6,
        "nationality>language": 6,
        "place>currency": 10,
        "place>capital": 10,
        "place>internet_code": 6,
        "place>highest_point": 6,
        "creator>born": 10,
        "creator>died": 6,
        "creator>nationality": 8,
    },
    "unanswerable": {
        "made_up_person": 24,
        "unstated_detail": 24,
        "future_event": 14,
        "missing_field": 24,
    },
}


def generate_corpus(
    wiki: Sequence[WikiSummary],
    factbook: Sequence[FactbookCountry],
    web: ZimWeb,
    quotas: Mapping[str, Mapping[str, int]] = CORPUS_QUOTAS,
    drops: Counter[str] | None = None,
    per_entity: int = 2,
    seed: int = SEED,
) -> list[dict[str, Any]]:
    """The embedded corpus's question rows, checked against the ZIM ``web``; at most
    ``per_entity`` questions of a kind are about one person, place or country."""
    rng = random.Random(seed)
    data = load_corpus_data(wiki, factbook)
    pages = Pages(web)
    makers = {
        "wiki": wiki_candidates,
        "factbook": factbook_candidates,
        "two_hop": two_hop_candidates,
        "unanswerable": unanswerable_candidates,
    }
    chosen: list[Candidate] = []
    for kind, make in makers.items():
        candidates = make(data, rng)
        picked = pick(
            candidates, quotas.get(kind, {}), rng, pages, per_entity=per_entity, drops=drops
        )
        if kind == "factbook":
            balance_sources(picked, rng)
        chosen += picked
    return rows("wq", chosen)


# ------------------------------------------------------------ the Python docs


@dataclass
class DocObject:
    """A documented function, class or method: where, its signature and what it says."""

    name: str  # qualified: "json.dumps", "str.split"
    path: str  # the HTML file, relative to the doc folder (= its ZIM path)
    signature: str  # the signature line as the page shows it, without "¶"
    params: dict[str, str | None]  # name -> default (None: no default)
    added: str  # "3.2" from a bare "New in version 3.2." of the whole object
    text: str  # all of its documentation, normalized


@dataclass
class DocModule:
    name: str
    path: str
    heading: str  # "json — JSON encoder and decoder"
    description: str
    added: str


@dataclass
class Docs:
    objects: list[DocObject] = field(default_factory=list)
    modules: list[DocModule] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # path -> whole text, normalized


_ADDED = re.compile(r"^New in version (\d\.\d+)\.$")
_KINDS = {"function", "method", "class", "classmethod", "staticmethod", "exception"}


def _text(el: Any) -> str:
    return " ".join(el.text_content().replace("¶", " ").split())


def parse_docs(root: Path, progress: Callable[[str], None] | None = None) -> Docs:
    """The functions, classes and modules the Sphinx HTML under ``root`` documents."""
    import lxml.etree
    import lxml.html

    docs = Docs()
    parser = lxml.html.HTMLParser(encoding="utf-8")  # Sphinx writes UTF-8
    for file in sorted(root.rglob("*.html")):
        rel = file.relative_to(root).as_posix()
        if rel.startswith("_") or file.is_symlink() or file.stat().st_size > MAX_HTML_BYTES:
            continue
        try:
            tree = lxml.html.fromstring(file.read_bytes(), parser=parser)
        except (OSError, ValueError, lxml.etree.ParserError) as exc:
            if progress:
                progress(f"skipped {rel}: {exc}")
            continue
        body = tree.find(".//body")
        docs.texts[rel] = norm(_text(body if body is not None else tree))
        for sec in tree.xpath("//section[starts-with(@id, 'module-')]"):
            h1 = sec.find("h1")
            if h1 is None:
                continue
            heading = _text(h1)
            name = sec.get("id")[len("module-") :]
            head, _, desc = heading.partition(" — ")
            if head.strip() != name or not desc:
                continue
            added = ""
            for div in sec.xpath("./div[contains(@class, 'versionadded')]"):
                m = _ADDED.match(_text(div))
                added = m.group(1) if m else added
            docs.modules.append(DocModule(name, rel, heading, desc.strip(), added))
        for dl in tree.xpath("//dl[contains(concat(' ', @class, ' '), ' py ')]"):
            kinds = set((dl.get("class") or "").split())
            dt = dl.find("dt")
            dd = dl.find("dd")
            if not kinds & _KINDS or dt is None or dd is None or not dt.get("id"):
                continue
            params: dict[str, str | None] = {}
            for em in dt.xpath(".//em[contains(@class, 'sig-param')]"):
                pname = em.xpath("./span[@class='n']")
                default = em.xpath("./span[@class='default_value']")
                if pname:
                    key = _text(pname[0])
                    params[key] = _text(default[0]) if default else None
            added = ""
            for div in dd.xpath("./div[contains(@class, 'versionadded')]"):
                m = _ADDED.match(_text(div))
                added = m.group(1) if m else added
            docs.objects.append(
                DocObject(dt.get("id"), rel, _text(dt), params, added, norm(_text(dl)))
            )
    if progress:
        counts = (len(docs.texts), len(docs.objects), len(docs.modules))
        progress("{} pages, {} objects, {} modules".format(*counts))
    return docs


# Names that Python 3.12-3.14 added: real-sounding, absent from the 3.11 docs (checked).
LATER_NAMES = [
    ("itertools.batched", "n"),
    ("math.sumprod", "q"),
    ("math.fma", "z"),
    ("pathlib.Path.walk", "top_down"),
    ("os.path.isjunction", "path"),
    ("os.path.splitroot", "p"),
    ("random.binomialvariate", "p"),
    ("copy.replace", "obj"),
    ("os.process_cpu_count", ""),
    ("statistics.kde", "kernel"),
    ("base64.z85encode", "s"),
    ("inspect.markcoroutinefunction", "func"),
    ("asyncio.eager_task_factory", "loop"),
    ("typing.override", "method"),
    ("pathlib.Path.from_uri", "uri"),
    ("uuid.uuid7", ""),
    ("itertools.pairwise_longest", "fillvalue"),
    ("sys.is_finalizing_thread", ""),
]


def _later_absent(name: str, docs: Docs) -> bool:
    last = name.split(".")[-1]
    needles = [norm(name), norm(".".join(name.split(".")[-2:])), norm(last) + "("]
    return not any(n in text for text in docs.texts.values() for n in needles)


def public(name: str) -> bool:
    """Whether a documented name is public API (not "asyncio._register_task", "test.*")."""
    return not name.startswith("test.") and not any(
        part.startswith("_") and not part.endswith("__") for part in name.split(".")
    )


def distinctive_module(m: DocModule, docs: Docs, english: Container[str]) -> bool:
    """Whether an answer that contains the module's name names that module: not a part
    of another module's name ("code" of "codecs") or of its own title, nor an English
    word ("signal", "wave": in ``english``)."""
    name = norm(m.name)
    if len(name) < 4 or name in norm(m.description) or name in english:
        return False
    return not any(name in norm(o.name) for o in docs.modules if o.name != m.name)


def pydocs_candidates(
    docs: Docs, rng: random.Random, english: Container[str] = frozenset()
) -> list[Candidate]:
    out: list[Candidate] = []
    seen: Counter[str] = Counter(o.name for o in docs.objects)

    def src(path: str) -> list[tuple[str, str, str]]:
        return [("pydocs", "", path)]  # the title is filled in from the ZIM

    for o in docs.objects:
        if seen[o.name] != 1 or not public(o.name):
            continue  # documented twice (which signature is meant?), or internal
        for pname, default in o.params.items():
            if default is None or default in ("None", "True", "False"):
                continue
            golds = [default]
            unquoted = default.strip("'\"")
            if unquoted != default and not loose(unquoted):
                golds.append(unquoted)
            q = phrase(
                rng,
                [
                    "What is the default value of the {p} parameter of {f}()?",
                    "In Python 3.11, what does the {p} argument of {f}() default to?",
                    "If {f}() is called without {p}, what value does {p} take?",
                ],
                p=pname,
                f=o.name,
            )
            out.append(
                Candidate(
                    "default",
                    "default",
                    f"default:{o.name}:{pname}",
                    q,
                    golds,
                    src(o.path),
                    o.signature,
                    entity=o.name,
                )
            )
        if o.added and o.added != "3.1":  # "3.1" is in "3.10" and "3.11"
            q = phrase(
                rng,
                [
                    "In which Python version was {f}() added?",
                    "Since which version of Python has {f}() been available?",
                    "Which Python release introduced {f}()?",
                ],
                f=o.name,
            )
            out.append(
                Candidate(
                    "version",
                    "object",
                    f"version:{o.name}",
                    q,
                    [o.added, f"Python {o.added}"],
                    src(o.path),
                    f"New in version {o.added}.",
                    bridge=o.signature,
                    entity=o.name,
                )
            )
    names = Counter(m.name for m in docs.modules)
    for m in docs.modules:
        if names[m.name] != 1 or m.name.startswith("test."):
            continue
        if distinctive_module(m, docs, english):
            q = phrase(
                rng,
                [
                    'Which Python module is documented under the title "{d}"?',
                    "Which standard library module provides: {d}?",
                    'In the Python 3.11 library reference, which module is described as "{d}"?',
                ],
                d=m.description,
            )
            out.append(
                Candidate(
                    "module",
                    "module",
                    f"module:{m.name}",
                    q,
                    [m.name],
                    src(m.path),
                    m.heading,
                    entity=m.name,
                )
            )
        if m.added and m.added != "3.1":
            q = phrase(
                rng,
                [
                    "In which Python version was the {n} module added?",
                    "Since which version of Python has the {n} module been in the standard "
                    "library?",
                ],
                n=m.name,
            )
            out.append(
                Candidate(
                    "version",
                    "module",
                    f"version:module:{m.name}",
                    q,
                    [m.added, f"Python {m.added}"],
                    src(m.path),
                    f"New in version {m.added}.",
                    bridge=m.heading,
                    entity=m.name,
                )
            )
    for name, pname in LATER_NAMES:
        if not _later_absent(name, docs):
            continue
        q = phrase(
            rng,
            [
                "In which Python version was {f}() added?",
                "Since which version of Python has {f}() been available?",
            ],
            f=name,
        )
        out.append(
            Candidate(
                "unanswerable",
                "later_version",
                f"none:version:{name}",
                q,
                [],
                [],
                f"{name} is not in the 3.11 documentation",
                answerable=False,
            )
        )
        if pname:
            q = f"What is the default value of the {pname} parameter of {name}()?"
            out.append(
                Candidate(
                    "unanswerable",
                    "later_default",
                    f"none:default:{name}",
                    q,
                    [],
                    [],
                    f"{name} is not in the 3.11 documentation",
                    answerable=False,
                )
            )
    # a parameter another function of the module has, that this one neither has nor mentions
    by_module: dict[str, list[DocObject]] = defaultdict(list)
    for o in docs.objects:
        if seen[o.name] == 1 and o.params and public(o.name) and "__" not in o.name:
            by_module[o.name.rsplit(".", 1)[0]].append(o)
    for module, objs in sorted(by_module.items()):
        pool = sorted({p for o in objs for p in o.params if len(p) >= 4 and p.isidentifier()})
        for o in objs:
            foreign = [p for p in pool if p not in o.params and norm(p) not in o.text]
            if not foreign:
                continue
            pname = rng.choice(foreign)
            q = f"What is the default value of the {pname} parameter of {o.name}()?"
            out.append(
                Candidate(
                    "unanswerable",
                    "foreign_parameter",
                    f"none:param:{o.name}:{pname}",
                    q,
                    [],
                    src(o.path),
                    f"{o.name}() has no parameter {pname}",
                    answerable=False,
                    entity=module,
                )
            )
    return out


PYDOCS_QUOTAS = {
    "default": {"default": 30},
    "module": {"module": 24},
    "version": {"object": 18, "module": 6},
    "unanswerable": {"later_version": 8, "later_default": 5, "foreign_parameter": 10},
}


def generate_pydocs(
    docs: Docs,
    web: ZimWeb,
    quotas: Mapping[str, Mapping[str, int]] = PYDOCS_QUOTAS,
    drops: Counter[str] | None = None,
    english: Container[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The documentation's question rows, checked against its ZIM ``web``; module names
    in ``english`` (common words) are not asked for."""
    rng = random.Random(SEED)
    pages = Pages(web)
    candidates = pydocs_candidates(docs, rng, english)
    chosen: list[Candidate] = []
    for kind in quotas:
        pool = [c for c in candidates if c.kind == kind]
        chosen += pick(pool, quotas[kind], rng, pages, per_entity=1, drops=drops)
    for c in chosen:
        c.sources = [(corpus, pages.title(path) or path, path) for corpus, _t, path in c.sources]
    return rows("py", chosen)


# ------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="corpus", required=True)
    c = sub.add_parser("corpus", help="the embedded default corpus")
    c.add_argument("--zim", help="its ZIM (default: the data directory's, built if missing)")
    p = sub.add_parser("pydocs", help="the Python 3.11 documentation")
    p.add_argument("html_dir", help="usr/share/doc/python3.11/html of python3.11-doc")
    p.add_argument("--zim", required=True, help="the ZIM `webqa corpus build` made of it")
    c.add_argument(
        "--train",
        action="store_true",
        help="write corpus_train.jsonl instead: questions drawn with another seed, none "
        "asking a fact that corpus_dev or corpus_heldout asks (for training a reward model)",
    )
    for parser in (c, p):
        parser.add_argument("--out", default=str(OUT_DIR), help="folder of the .jsonl files")
    args = ap.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    drops: Counter[str] = Counter()
    try:
        if args.corpus == "corpus":
            from webqa.web.corpus import load_factbook, load_wiki_summaries
            from webqa.web.zimweb import open_default_corpus

            web = ZimWeb(args.zim) if args.zim else open_default_corpus(progress=say)
            seed = TRAIN_SEED if args.train else SEED
            table = generate_corpus(
                load_wiki_summaries(), load_factbook(), web, drops=drops, seed=seed
            )
            prefix = "corpus"
            if args.train:
                return write_train(prefix, table, Path(args.out))
        else:
            root = Path(args.html_dir)
            if not (root / "library").is_dir():
                say(f"gen_questions: {root}: not the python3.11-doc html folder (no library/)")
                return 1
            from webqa.web.autolink import common_words
            from webqa.web.corpus import load_wiki_summaries

            # words of English prose: a module named like one is not graded by its name
            english = common_words(s.extract for s in load_wiki_summaries())
            web = ZimWeb(args.zim)  # first: a wrong path fails before the parsing
            docs = parse_docs(root, progress=say)
            table = generate_pydocs(docs, web, drops=drops, english=english)
            prefix = "pydocs"
    except WebQAError as exc:
        say(f"gen_questions: {exc}")
        return 1
    counts = write_sets(prefix, table, Path(args.out))
    print(
        json.dumps(
            {"corpus": prefix, "counts": counts, "dropped": dict(drops.most_common())}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
