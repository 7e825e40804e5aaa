"""Answer quality over a question file with gold answers (default ../shared/eval/dev.jsonl).

Prints one JSON object: accuracy (a gold answer appears in the answer; for unanswerable
questions, the answer declines), share of answers with at least one valid citation,
citation support (share of cited sentences whose cited quotes support them, judged by
the grounding scorer's MiniLM + policy judge), invalid-action rate, mean actions and
seconds per question. Also: accuracy per ``kind`` (question files that have one, such
as benchmarks/questions/), how well the agent declines (precision and recall of its
declines, and how often it declines answerable questions), and answer hygiene (answers
that echo the prompt: the question, a "[1] <title>" reference list, "Answer:" labels,
quotes pasted as a list). Modes: --closed-book (same model, no browsing), or browsing
with -n; --zim browses another ZIM (e.g. one made with `webqa corpus build`).

    python benchmarks/quality.py -n 1 --limit 10 --details out/details.jsonl
    python benchmarks/quality.py --questions benchmarks/questions/pydocs_dev.jsonl \
        --zim /tmp/pydocs/pydocs.zim
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webqa.grading import correct, declined, norm  # noqa: E402

_REFERENCE_LINE = re.compile(r"^\s*\[\d{1,3}\]\s*\S")  # "[1] Poland - The World Factbook"
_LABEL_LINE = re.compile(
    r"^\s*(?:#+\s*)?\**(?:answer|question|quotes?|references?|sources?)\**\s*:", re.IGNORECASE
)
_QUOTE_LINE = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|\[\d{1,3}\])?\s*[\"“'‘]")


def hygiene_problems(question: str, answer: str) -> list[str]:
    """How an answer echoes its prompt, if it does: "question" (the question verbatim),
    "reference list" (a line that starts with "[n] <text>"), "label" (a line that starts
    with "Answer:", "Question:", "Quotes:", ...), "quote list" (two or more lines that
    start with a quotation mark)."""
    problems = []
    q = norm(question)
    if len(q) >= 12 and q in norm(answer):
        problems.append("question")
    lines = answer.splitlines()
    if any(_REFERENCE_LINE.match(line) for line in lines):
        problems.append("reference list")
    if any(_LABEL_LINE.match(line) for line in lines):
        problems.append("label")
    if sum(bool(_QUOTE_LINE.match(line)) for line in lines) >= 2:
        problems.append("quote list")
    return problems


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def per_kind(rows: list[dict]) -> dict[str, dict]:
    """Questions, right answers and accuracy for each ``kind`` the rows have."""
    kinds: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("kind"):
            kinds.setdefault(row["kind"], []).append(row)
    return {
        kind: {
            "questions": len(group),
            "correct": sum(r["correct"] for r in group),
            "accuracy": ratio(sum(r["correct"] for r in group), len(group)),
        }
        for kind, group in sorted(kinds.items())
    }


def decline_report(rows: list[dict]) -> dict:
    """How the agent declines: precision (of its declines, the share that were
    unanswerable questions), recall (of the unanswerable questions, the share declined)
    and the share of answerable questions it declined."""
    unanswerable = [r for r in rows if not r["answerable"]]
    answerable = [r for r in rows if r["answerable"]]
    declines = [r for r in rows if r["declined"]]
    right = sum(not r["answerable"] for r in declines)
    return {
        "declined": len(declines),
        "precision": ratio(right, len(declines)),
        "recall": ratio(right, len(unanswerable)),
        "answerable_declined_rate": ratio(sum(r["declined"] for r in answerable), len(answerable)),
    }


def hygiene_report(rows: list[dict]) -> dict:
    """How many answers echo the prompt, their share, and how often each way."""
    bad = [r for r in rows if r["hygiene"]]
    ways: dict[str, int] = {}
    for row in bad:
        for way in row["hygiene"]:
            ways[way] = ways.get(way, 0) + 1
    return {"echoing_answers": len(bad), "share": ratio(len(bad), len(rows)), "by_way": ways}


MAX_LINE_CHARS = 64 * 1024  # a longer line in a question file is an error, not read on


def load_items(path: str) -> list[dict]:
    """The questions of a JSONL file (one object a line: id, question, answers,
    answerable; kind optional). A ValueError names the file and line of a bad one."""
    items: list[dict] = []
    n = 0
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(iter(lambda: f.readline(MAX_LINE_CHARS + 1), ""), 1):
                item = parse_item(line, f"{path}:{n}")
                if item is not None:
                    items.append(item)
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (near line {n + 1}: {exc.reason})") from exc
    return items


def parse_item(line: str, where: str) -> dict | None:
    """One question file line as a question (None for a blank line)."""
    if len(line) > MAX_LINE_CHARS:
        raise ValueError(f"{where}: line longer than {MAX_LINE_CHARS} characters")
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from exc
    if not (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("question"), str)
        and isinstance(item.get("answerable"), bool)
        and isinstance(item.get("answers"), list)
        and all(isinstance(a, str) for a in item["answers"])
        and isinstance(item.get("kind", ""), str)
    ):
        raise ValueError(
            f"{where}: needs id and question (strings), answers (a list of strings) "
            "and answerable (true or false)"
        )
    return item


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", default=str(ROOT.parent / "shared" / "eval" / "dev.jsonl"))
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("--closed-book", action="store_true")
    ap.add_argument("--model", default=None)
    ap.add_argument("--api-base", default=None)
    ap.add_argument("--max-actions", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--reward-model",
        help="best-of-n's reward model, as `webqa ask --reward-model` (default: webqa's)",
    )
    ap.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="default for n > 1: 0.4 locally, 0.8 with --api-base (see api.agent_config)",
    )
    ap.add_argument("--details", help="write one JSON line per question here")
    ap.add_argument("--dtype", default=None, help="local model precision (default: auto)")
    ap.add_argument("--zim", help="browse this ZIM instead of the embedded corpus")
    ap.add_argument(
        "--follow-up",
        choices=("draft", "yes", "off"),
        default=None,
        help="guided browsing's second hop (Guided.follow_up, on by default), its judge "
        "the policy's draft (the default) or its yes/no (Guided.judge_by), or off",
    )
    ap.add_argument(
        "--no-read-span",
        action="store_true",
        help="redraft without first copying out the quotes' words that answer the question "
        "(Guided.read_span off)",
    )
    ap.add_argument(
        "--browsing",
        choices=("auto", "guided", "free"),
        default="auto",
        help="as `webqa ask --browsing` (auto: guided locally and for a small served model)",
    )
    ap.add_argument(
        "--server-decoding",
        default=None,
        help="as `webqa ask --server-decoding` (default: probed once per server)",
    )
    args = ap.parse_args()

    from machine import machine_report, precision_report

    from webqa import api
    from webqa.agent import run_question
    from webqa.answering import cited_numbers
    from webqa.errors import WebQAError
    from webqa.models.base import GenerationRequest, Message
    from webqa.models.grounding import GroundingScorer
    from webqa.procedure import Free, Guided
    from webqa.text import split_sentences, strip_think

    try:
        items = load_items(args.questions)
    except ValueError as exc:
        sys.exit(f"quality: {exc}")
    if args.limit:
        items = items[: args.limit]
    t0 = time.perf_counter()
    try:  # the web first: a wrong --zim fails before a model loads
        web = None if args.closed_book else api.open_web(zim=args.zim)
        policy = api.load_policy(
            args.model, api_base=args.api_base, dtype=args.dtype, decoding=args.server_decoding
        )
    except WebQAError as exc:
        sys.exit(f"quality: {exc}")
    reward = api.load_reward(args.reward_model, policy) if args.n > 1 else None
    judge = GroundingScorer.default(policy)
    # the procedure `webqa ask` browses with (guided locally and for a small served model)
    procedure = (
        None
        if args.closed_book
        else api.browsing_procedure(args.api_base, None, None, args.browsing, policy.name)
    )
    free = isinstance(procedure, Free)
    if args.follow_up:
        if not isinstance(procedure, Guided):
            sys.exit("quality: --follow-up needs the guided procedure (a local model)")
        procedure = (
            dataclasses.replace(procedure, follow_up=False)
            if args.follow_up == "off"
            else dataclasses.replace(procedure, follow_up=True, judge_by=args.follow_up)
        )
    if args.no_read_span:
        if not isinstance(procedure, Guided):
            sys.exit("quality: --no-read-span needs the guided procedure (a local model)")
        procedure = dataclasses.replace(procedure, read_span=False)
    setup_seconds = time.perf_counter() - t0

    if args.details:
        open(args.details, "w").close()  # a fresh file each run; lines are added as they come
    rows = []

    def prefilled() -> int:  # prompt tokens a local model ran (those after kept caches)
        stats = getattr(policy, "decode_stats", None)
        return stats.prefill_tokens if stats is not None else 0

    for k, item in enumerate(items):
        start = time.perf_counter()
        tokens_before = prefilled()
        actions = invalid = 0
        quotes: list = []
        if args.closed_book:
            from webqa import prompting

            chat = [Message("user", prompting.render("closed_book", question=item["question"]))]
            gen = policy.generate([GenerationRequest(chat=chat, max_new_tokens=200)])[0]
            answer = strip_think(gen.text)
        else:
            config = api.agent_config(
                free,
                n=args.n,
                max_actions=args.max_actions,
                temperature=args.temperature,
                seed=0,
            )
            assert web is not None
            result = run_question(
                item["question"],
                policy=policy,
                web=web,
                reward=reward,
                n=args.n,
                config=config,
                procedure=procedure,
            )
            answer = result.answer
            best = result.candidates[result.best]
            actions = sum(len(c.steps) for c in result.candidates)
            invalid = sum(c.invalid_actions for c in result.candidates)
            quotes = [r for r in result.references]
        seconds = time.perf_counter() - start
        prompt_tokens = prefilled() - tokens_before
        cited_sentences = supported = 0
        valid_citation = False
        from webqa.values import Quote

        qobjs = [Quote(r.title, r.url, "", r.extract) for r in quotes]
        for sentence in split_sentences(answer):
            nums = [n for n in cited_numbers(sentence) if 1 <= n <= len(qobjs)]
            if not nums:
                continue
            valid_citation = True
            cited_sentences += 1
            if judge.supported(sentence, [qobjs[n - 1] for n in nums]):
                supported += 1
        row = {
            "id": item["id"],
            "question": item["question"],
            "answer": answer,
            "correct": correct(item, answer),
            "answerable": item["answerable"],
            "kind": item.get("kind"),
            "declined": declined(answer),
            "hygiene": hygiene_problems(item["question"], answer),
            "valid_citation": valid_citation,
            "cited_sentences": cited_sentences,
            "supported_sentences": supported,
            "actions": actions,
            "invalid_actions": invalid,
            "seconds": round(seconds, 2),
            "prompt_tokens": prompt_tokens,
        }
        if not args.closed_book:
            row["quotes"] = [q.extract[:300] for q in quotes]
            row["quote_titles"] = [q.title for q in quotes]  # what names a quote's page
            row["trajectory"] = [s.command for s in best.steps]
            # a command taken again at the same observation, in any candidate
            row["repeated_commands"] = sum(
                len(c.steps) - len({(s.command, s.prompt) for s in c.steps})
                for c in result.candidates
            )
            if args.n > 1:
                row["candidates"] = [
                    {
                        "answer": c.answer,
                        "correct": correct(item, c.answer),
                        "score": c.score,
                        "agreement": c.agreement,
                        # what a reward model reads: rescoring needs no browsing again
                        "references": [
                            {"title": r.title, "url": r.url, "extract": r.extract}
                            for r in c.references
                        ],
                    }
                    for c in result.candidates
                ]
        rows.append(row)
        print(
            f"[{k + 1}/{len(items)}] {item['id']} {'OK ' if row['correct'] else 'ERR'} "
            f"{seconds:5.1f}s {answer[:90]!r}",
            file=sys.stderr,
            flush=True,
        )
        if args.details:
            with open(args.details, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    n_items = len(rows)
    total_actions = sum(r["actions"] for r in rows)
    cited = sum(r["cited_sentences"] for r in rows)
    report = {
        "mode": "closed_book" if args.closed_book else f"browse_n{args.n}",
        "model": policy.name,
        "machine": machine_report(),
        "precision": precision_report(policy),  # None: a model behind --api-base
        "browsing": None if procedure is None else procedure.name,
        # guided browsing's switches (None: free or closed book)
        "guided": {
            "follow_up": procedure.follow_up,
            "judge_by": procedure.judge_by,
            "read_span": procedure.read_span,
        }
        if isinstance(procedure, Guided)
        else None,
        "reward_model": None if reward is None else reward.name,
        # how a served model's guided commands were held (None: a local model)
        "server_decoding": policy.served_decoding() if hasattr(policy, "served_decoding") else None,
        "repeated_commands": sum(r.get("repeated_commands", 0) for r in rows),
        "temperature": api.agent_config(
            free, n=args.n, max_actions=1, temperature=args.temperature, seed=0
        ).temperature
        if not args.closed_book
        else None,
        "questions": n_items,
        "accuracy": round(sum(r["correct"] for r in rows) / n_items, 3),
        "accuracy_answerable": round(
            sum(r["correct"] for r in rows if r["answerable"])
            / max(1, sum(r["answerable"] for r in rows)),
            3,
        ),
        "declined_correctly": sum(r["correct"] for r in rows if not r["answerable"]),
        "unanswerable": sum(not r["answerable"] for r in rows),
        "valid_citation_share": round(sum(r["valid_citation"] for r in rows) / n_items, 3),
        "citation_support": round(sum(r["supported_sentences"] for r in rows) / cited, 3)
        if cited
        else None,
        "invalid_action_rate": round(sum(r["invalid_actions"] for r in rows) / total_actions, 3)
        if total_actions
        else None,
        "mean_actions": round(total_actions / n_items / max(1, args.n), 2),
        "seconds_per_question": round(sum(r["seconds"] for r in rows) / n_items, 2),
        # prompt tokens a local model ran per question, beyond the caches it kept (system
        # prompts, the previous step's prompt); None behind --api-base
        "prompt_tokens_per_question": round(sum(r["prompt_tokens"] for r in rows) / n_items)
        if getattr(policy, "decode_stats", None) is not None
        else None,
        "setup_seconds": round(setup_seconds, 1),
        "questions_file": args.questions,
        "zim": args.zim,
        "per_kind": per_kind(rows),
        "declining": decline_report(rows),
        "hygiene": hygiene_report(rows),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
