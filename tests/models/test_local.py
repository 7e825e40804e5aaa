"""LocalPolicy on the real SmolLM2-135M GGUF (converted once per module, ~15 s)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from webqa.errors import ModelError
from webqa.models.base import Generation, GenerationRequest, Message, Policy
from webqa.models.decoding import could_finish
from webqa.models.local import MARKER, PREFIX_MIN_TOKENS, LocalPolicy
from webqa.models.presets import resolve_model

SPEC = "smollm2-135m"


class Commands:
    """Accepts `Search <text>`, `Clicked on link <0|1|2>` or `Scrolled down <1|2|3>`."""

    FORMS: tuple[tuple[str, str | None], ...] = (
        ("Search ", None),
        ("Clicked on link ", "012"),
        ("Scrolled down ", "123"),
    )

    def allows(self, text: str) -> bool:
        for head, choices in self.FORMS:
            if head.startswith(text):
                return True
            if text.startswith(head):
                rest = text[len(head) :]
                if choices is None:
                    return "\n" not in rest
                return rest == "" or (len(rest) == 1 and rest in choices)
        return False

    def complete(self, text: str) -> bool:
        return bool(re.fullmatch(r"Search \S.*|Clicked on link [012]|Scrolled down [123]", text))


class ScrollOnly(Commands):
    FORMS: tuple[tuple[str, str | None], ...] = (("Scrolled down ", "123"),)

    def complete(self, text: str) -> bool:
        return bool(re.fullmatch(r"Scrolled down [123]", text))


def chat(question: str, system: str | None = None) -> list[Message]:
    messages = [Message("system", system)] if system else []
    return [*messages, Message("user", question)]


BROWSE = (
    "You browse the web. Reply with exactly one command: Search <query>, "
    "Clicked on link <0|1|2>, or Scrolled down <1|2|3>."
)
PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea, please, and make it about waves at night.",
    "Hi",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def policy(cache: Path) -> LocalPolicy:
    # bf16, the precision of the cached copy, so parity with the GGUF reference is exact
    loaded = LocalPolicy(SPEC, cache_dir=cache, dtype="bfloat16")
    loaded.load()
    return loaded


def greedy(prompts: list[str], tokens: int = 16) -> list[GenerationRequest]:
    return [GenerationRequest(chat=chat(p), max_new_tokens=tokens) for p in prompts]


def test_construction_is_cheap_and_lazy(tmp_path: Path) -> None:
    lazy = LocalPolicy("no-such-model", cache_dir=tmp_path)
    assert isinstance(lazy, Policy)
    assert lazy.name == "no-such-model" and lazy.load_seconds is None
    assert lazy.generate([]) == [] and lazy.yes_probability([]) == []
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        lazy.generate(greedy(["Hi"]))
    with pytest.raises(ModelError, match="unknown dtype 'int4'"):
        LocalPolicy(SPEC, dtype="int4")


def test_first_load_converts_to_a_bf16_cache(policy: LocalPolicy, cache: Path) -> None:
    assert policy.converted
    folder = cache / resolve_model(SPEC).key
    files = {p.name for p in folder.iterdir()}
    assert {MARKER, "model.safetensors", "config.json", "chat_template.jinja"} <= files
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no partial folders left


def test_second_load_reuses_the_cache_and_decodes_the_same(
    policy: LocalPolicy, cache: Path
) -> None:
    again = LocalPolicy(SPEC, cache_dir=cache, dtype="bfloat16")
    again.load()
    assert not again.converted
    assert policy.load_seconds is not None and again.load_seconds is not None
    assert again.load_seconds < policy.load_seconds / 3
    requests = greedy(PROMPTS[:2], tokens=12)
    assert again.generate(requests) == policy.generate(requests)


def test_greedy_tokens_match_transformers_generate_on_the_gguf(policy: LocalPolicy) -> None:
    """Parity: the bf16 copy plus our decode loop give the reference's greedy tokens."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    gguf = resolve_model(SPEC).gguf_file()
    reference = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    prompt = policy.encode_chat(chat("What is the capital of France?"))
    with torch.inference_mode():
        out = reference.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, pad_token_id=2
        )
    expected = [int(t) for t in out[0, len(prompt) :] if int(t) != 2]
    [ours] = policy.generate(greedy(["What is the capital of France?"], tokens=12))
    assert ours.tokens == len(expected)
    assert ours.text == policy._tokenizer.decode(expected, skip_special_tokens=True)


def test_greedy_output_and_token_counts(policy: LocalPolicy) -> None:
    [result] = policy.generate(greedy(["What is the capital of France?"], tokens=24))
    assert "Paris" in result.text
    assert 0 < result.tokens <= 24
    assert result.prompt_tokens == len(policy.encode_chat(chat("What is the capital of France?")))
    [cut] = policy.generate(greedy(["Write a long story about a dragon."], tokens=5))
    assert cut.tokens == 5 and cut.text


def test_batched_decoding_matches_one_at_a_time(policy: LocalPolicy, cache: Path) -> None:
    # float32, so the comparison tests the padding and masking, not bf16 rounding
    # (a padded batch runs differently shaped kernels; bf16 logits move by ~0.25).
    exact = LocalPolicy(SPEC, cache_dir=cache, dtype="float32")
    requests = greedy(PROMPTS, tokens=16)  # prompts of different lengths: left padding
    alone = [exact.generate([request])[0] for request in requests]
    assert exact.generate(requests) == alone
    chats = [chat(p) for p in PROMPTS]
    together = exact.yes_probability(chats)
    apart = [exact.yes_probability([c])[0] for c in chats]
    assert together == pytest.approx(apart, abs=1e-4)
    exact.score_batch = 2  # sorted by length, scored two at a time, put back in order
    assert exact.yes_probability(chats) == pytest.approx(apart, abs=1e-4)


def test_stop_strings_end_the_text_before_them(policy: LocalPolicy) -> None:
    request = GenerationRequest(chat=chat("Name three primary colors."), stop=(",",))
    [result] = policy.generate([request])
    assert result.text and "," not in result.text
    [full] = policy.generate([GenerationRequest(chat=chat("Name three primary colors."))])
    assert full.text.startswith(result.text + ",")


def test_constrained_commands_are_always_valid(policy: LocalPolicy) -> None:
    constraint = Commands()
    questions = [
        "Who wrote Hamlet?",
        "Find the population of Tokyo. You are on a results page with links 0, 1 and 2.",
        "The answer is further down the page.",
        "Look up 東京の天気 (the weather in Tokyo).",
    ]
    requests = [
        GenerationRequest(chat=chat(q, BROWSE), max_new_tokens=24, constraint=constraint)
        for q in questions
    ]
    sampled = [
        GenerationRequest(
            chat=chat(q, BROWSE),
            max_new_tokens=24,
            constraint=constraint,
            temperature=1.0,
            seed=seed,
        )
        for seed, q in enumerate(questions)
    ]
    for result in policy.generate(requests + sampled):
        assert constraint.complete(result.text), result
        assert "\n" not in result.text and "\ufffd" not in result.text


def test_a_narrow_constraint_forces_its_forms(policy: LocalPolicy) -> None:
    requests = [
        GenerationRequest(chat=chat(q), max_new_tokens=16, constraint=ScrollOnly())
        for q in ("What is the capital of France?", "Tell me a joke.")
    ]
    for result in policy.generate(requests):
        assert result.text in {"Scrolled down 1", "Scrolled down 2", "Scrolled down 3"}
        assert result.tokens <= 16


def test_half_characters_are_recognised_and_judged(policy: LocalPolicy) -> None:
    vocab = policy._vocab
    ids = policy._tokenizer("héllo 東京", add_special_tokens=False)["input_ids"]
    halves = [vocab.half_character(ids[:k]) for k in range(1, len(ids) + 1)]
    assert halves[-1] == b"" and b"\xe6\x9d" in halves  # 東 is three byte tokens here
    assert could_finish(b"\xe6\x9d", "Search ", Commands())  # any character may follow
    assert not could_finish(b"\xe6", "Scrolled down ", ScrollOnly())  # only 1, 2 or 3


def test_seeded_sampling_is_reproducible(policy: LocalPolicy) -> None:
    def sample(seeds: list[int]) -> list[Generation]:
        return policy.generate(
            [
                GenerationRequest(
                    chat=chat("Tell me a story."), max_new_tokens=12, temperature=1.0, seed=seed
                )
                for seed in seeds
            ]
        )

    first = sample([1, 2, 3])
    assert sample([1, 2, 3]) == first
    assert len({g.text for g in first}) > 1  # different seeds, different stories


def test_yes_probability(policy: LocalPolicy) -> None:
    def ask(statement: str) -> list[Message]:
        return chat(f"Answer yes or no. {statement}")

    probs = policy.yes_probability(
        [
            ask("Is Paris the capital of France?"),
            ask("Is the sky green?"),
            ask("Is water wet?"),
        ]
    )
    assert len(probs) == 3
    assert all(0.0 <= p <= 1.0 for p in probs)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file size limits")
def test_a_failed_conversion_leaves_no_cache(tmp_path: Path) -> None:
    """A disk that fills half way through the conversion: the real write fails (the file
    size limit stands in for the disk), and no half cache is left to be trusted."""
    import resource
    import signal

    import transformers  # imported before the limit: nothing else needs writing then

    del transformers
    key = resolve_model(SPEC).key
    stale = tmp_path / f".{key}.partial-999999999-old"  # from a process that was killed
    stale.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails, not the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, hard))  # 8 MiB: the weights are ~270
    try:
        with pytest.raises(ModelError, match="could not convert .*SmolLM2.*"):
            LocalPolicy(SPEC, cache_dir=tmp_path).load()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert [p.name for p in tmp_path.iterdir()] == []


# the browsing prompt's opening: long enough for a prefix cache (PREFIX_MIN_TOKENS), short
# enough that the float32 prefills of these tests take seconds on an AVX2 CPU, not minutes
SYSTEM = (Path(__file__).parents[2] / "prompts" / "browse_system.txt").read_text()[:800]
OBSERVATIONS = [
    "Question: who wrote Hamlet?\nPage: (none)",
    "Question: how tall is Mount Everest?\nPage: Mount Everest is Earth's highest mountain "
    "above sea level, in the Mahalangur Himal of the Himalayas.",
    "Question: when did the Berlin Wall fall?\nPage: search results for Berlin Wall",
]


def browsing(
    observations: list[str], constraint: Commands | None = None
) -> list[GenerationRequest]:
    return [
        GenerationRequest(chat=chat(o, SYSTEM), max_new_tokens=12, constraint=constraint)
        for o in observations
    ]


@pytest.fixture(scope="module")
def exact_pair(cache: Path) -> tuple[LocalPolicy, LocalPolicy]:
    """float32 with and without the prefix cache: greedy outputs must match exactly."""
    return (
        LocalPolicy(SPEC, cache_dir=cache, dtype="float32"),
        LocalPolicy(SPEC, cache_dir=cache, dtype="float32", prefix_cache=False),
    )


def test_prefix_cache_decodes_as_without_it(exact_pair: tuple[LocalPolicy, LocalPolicy]) -> None:
    cached, plain = exact_pair
    requests = browsing(OBSERVATIONS)  # user messages of different lengths
    expected = plain.generate(requests)
    assert plain.prefix_hits == plain.prefix_misses == 0 and not plain._prefixes
    assert cached.generate(requests) == expected
    assert (cached.prefix_misses, cached.prefix_hits) == (1, 0)
    [(key, _)] = cached._prefixes.items()
    assert len(key) > PREFIX_MIN_TOKENS and cached.encode_chat(chat(OBSERVATIONS[0], SYSTEM))[
        : len(key)
    ] == list(key)
    # The next calls (one request, then the batch again) start from the kept prefix.
    for request, result in zip(requests, expected, strict=True):
        assert cached.generate([request]) == [result]
    assert cached.generate(requests[::-1]) == expected[::-1]
    assert (cached.prefix_misses, cached.prefix_hits) == (1, 4)


def test_a_batch_may_mix_prefixes(exact_pair: tuple[LocalPolicy, LocalPolicy]) -> None:
    """Browsing commands and answers in one batch: each row starts from its own prefix."""
    cached, plain = exact_pair
    writer = "You write short answers from quotes.\n" * 12 + "Cite quotes as [1]."
    requests = browsing(OBSERVATIONS[:2], Commands()) + [
        GenerationRequest(
            chat=chat("Quote 1: Hamlet is by Shakespeare. Who?", writer), max_new_tokens=8
        ),
        GenerationRequest(chat=chat("Hi", "Be brief."), max_new_tokens=4),  # no prefix kept
    ]
    expected = plain.generate(requests)
    cached._prefixes.clear()
    cached._prompts.clear()

    def fetched() -> int:  # prefixes computed, or read from disk (an earlier test's)
        return cached.prefix_misses + cached.prefix_loads

    before = fetched()
    assert cached.generate(requests) == expected
    assert fetched() - before == 2 and len(cached._prefixes) == 2
    assert cached.generate(requests[::-1]) == expected[::-1]
    assert fetched() - before == 2


def test_decode_stats_count_prefill_tokens_and_steps(
    exact_pair: tuple[LocalPolicy, LocalPolicy],
) -> None:
    _, plain = exact_pair
    plain.load()
    before = plain.decode_stats.copy()
    request = GenerationRequest(chat=chat("Say something.", "Be brief."), max_new_tokens=5)
    [result] = plain.generate([request])
    after = plain.decode_stats
    assert after.prefill_tokens - before.prefill_tokens == len(plain.encode_chat(request.chat))
    assert after.steps - before.steps == after.step_rows - before.step_rows  # one row
    assert result.tokens - 1 <= after.steps - before.steps <= result.tokens
    assert after.prefill_seconds > before.prefill_seconds


def test_prefix_cache_is_kept_for_a_few_prefixes(
    exact_pair: tuple[LocalPolicy, LocalPolicy],
) -> None:
    from webqa.models import local

    cached, plain = exact_pair
    for n in range(local.PREFIX_ENTRIES + 2):
        system = f"Rule {n}: be brief.\n" + SYSTEM
        request = GenerationRequest(chat=chat("Hi", system), max_new_tokens=3)
        assert cached.generate([request]) == plain.generate([request])
    assert len(cached._prefixes) == local.PREFIX_ENTRIES
    short = GenerationRequest(chat=chat("Hi", "Be brief."), max_new_tokens=3)
    before = dict(cached._prefixes)
    assert cached.generate([short]) == plain.generate([short])  # too short to cache
    assert dict(cached._prefixes) == before


def test_prefix_cache_keeps_constraints(exact_pair: tuple[LocalPolicy, LocalPolicy]) -> None:
    cached, plain = exact_pair
    constraint = Commands()
    requests = browsing(OBSERVATIONS, constraint)
    results = cached.generate(requests)
    for result in results:
        assert constraint.complete(result.text), result
    assert results == plain.generate(requests)


PAGE = (
    "Burkina Faso is a landlocked country in West Africa. Its capital and largest city is "
    "Ouagadougou. It has a population of about 23 million. Its currency is the CFA franc."
)


def test_forced_text_is_fed_in_one_step(
    exact_pair: tuple[LocalPolicy, LocalPolicy], monkeypatch: pytest.MonkeyPatch
) -> None:
    from webqa.browser.commands import CommandConstraint
    from webqa.models import decoding

    cached, plain = exact_pair
    at, least = PAGE.index("Its capital"), PAGE.index(" It has")
    ends = [PAGE.index(s) + len(s) for s in ("Ouagadougou.", "million.", "franc.")]
    quote = CommandConstraint(
        [0], PAGE, kinds={"Quote"}, quote_starts={at: least}, quote_ends=ends, exact=True
    )
    asked = chat("What is the capital of Burkina Faso?", BROWSE)
    forced = GenerationRequest(chat=asked, max_new_tokens=96, constraint=quote)
    passes: list[int] = []
    real = decoding.last_logits
    monkeypatch.setattr(decoding, "last_logits", lambda *a: passes.append(1) or real(*a))
    [result] = plain.generate([forced])
    assert result.text.startswith("Quote: " + PAGE[at:least]) and quote.complete(result.text)
    assert result.tokens > 15 and len(passes) <= result.tokens / 3  # not a pass per token
    # rows with forced text, free text and other constraints decode together as alone
    mixed = [forced, *browsing(OBSERVATIONS[:2], Commands()), *greedy(PROMPTS[:2])]
    for policy in (plain, cached):
        assert policy.generate(mixed) == [policy.generate([r])[0] for r in mixed]


def test_a_prefix_cache_persists_between_processes(
    exact_pair: tuple[LocalPolicy, LocalPolicy], cache: Path
) -> None:
    """A new policy (a new process) reads the system prompt's KV cache from disk instead
    of running it again, and decodes exactly as without any cache."""
    cached, plain = exact_pair
    requests = browsing(OBSERVATIONS[:2])
    expected = plain.generate(requests)
    assert cached.generate(requests) == expected  # computes the prefix or reads it
    fresh = LocalPolicy(SPEC, cache_dir=cache, dtype="float32")
    assert fresh.generate(requests) == expected
    assert (fresh.prefix_loads, fresh.prefix_misses) == (1, 0)
    files = list((cache / resolve_model(SPEC).key / "prefixes").glob("*.safetensors"))
    assert files
    for file in files:  # a damaged file is computed again, not trusted
        file.write_bytes(b"garbage")
    damaged = LocalPolicy(SPEC, cache_dir=cache, dtype="float32")
    assert damaged.generate(requests) == expected
    assert (damaged.prefix_loads, damaged.prefix_misses) == (0, 1)


def test_a_prompt_that_starts_like_a_kept_one_runs_only_the_rest(
    exact_pair: tuple[LocalPolicy, LocalPolicy],
) -> None:
    """The next browsing step on the same page shares its start with the step before:
    only the part after it is run, and the output is exactly as without the cache."""
    cached, plain = exact_pair
    page = OBSERVATIONS[1] + " It is 8,849 metres high. " * 20
    first = GenerationRequest(chat=chat(page + "\nQuotes: none", SYSTEM), max_new_tokens=6)
    second = GenerationRequest(chat=chat(page + "\nQuotes: one", SYSTEM), max_new_tokens=6)
    expected = plain.generate([second])
    cached.generate([first])
    before = cached.decode_stats.prefill_tokens
    assert cached.generate([second]) == expected
    ran = cached.decode_stats.prefill_tokens - before
    prompt = cached.encode_chat(second.chat)
    shared = next(
        i
        for i, (a, b) in enumerate(zip(prompt, cached.encode_chat(first.chat), strict=False))
        if a != b
    )
    assert ran == len(prompt) - shared < len(prompt) // 4


def test_identical_prompts_in_a_batch_run_once(
    exact_pair: tuple[LocalPolicy, LocalPolicy],
) -> None:
    """Best-of-n's episodes see the same results page: its prompt is run once."""
    _, plain = exact_pair
    request = GenerationRequest(chat=chat("Name a colour.", "Be brief."), max_new_tokens=4)
    before = plain.decode_stats.prefill_tokens
    [alone] = plain.generate([request])
    once = plain.decode_stats.prefill_tokens - before
    results = plain.generate([request] * 3)
    assert results == [alone] * 3
    assert plain.decode_stats.prefill_tokens - before == 2 * once
