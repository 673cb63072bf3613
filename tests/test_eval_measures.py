import pytest

from newsqa.eval import measures


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The US Open", "us open"),  # case and articles
        ("U.S. Open!", "US Open"),  # punctuation, dotted acronyms
        ("Café Société", "cafe societe"),  # diacritics
        ("six", "6"),
        ("twenty-seven years", "27 years"),
        ("1,383 civilians", "1383 civilians"),
        ("one thousand three hundred and eighty-three", "1383"),
        ("$19 million", "19 million"),
        ("two million", "2,000,000"),
        ("a million", "1000000"),
        ("1.5 billion", "1500000000"),
        ("al-Qaeda", "al Qaeda"),
        ("Sudani's announcement", "Sudani announcement"),
        ("“Squid Game”", "Squid Game"),
        ("New Jersey & Oregon", "new jersey and oregon"),
    ],
)
def test_normalisation_makes_equivalent_answers_equal(a, b):
    assert measures.normalize(a) == measures.normalize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5.9", "59"),  # a decimal point is not punctuation
        ("2021 2022", "4043"),  # two numerals side by side stay two numbers
        ("one two", "3"),
        ("Russia and China", "Russia China"),  # "and" only joins number words
    ],
)
def test_normalisation_keeps_different_answers_apart(a, b):
    assert measures.normalize(a) != measures.normalize(b)


def test_decimals_and_sentence_full_stops():
    assert measures.normalize("It reached 104.5 F.") == "it reached 104.5 f"


def test_exact_match_takes_any_accepted_answer():
    assert measures.exact_match("the Seattle Storm", ["Storm", "Seattle Storm"]) == 1.0
    assert measures.exact_match("Seattle", ["Seattle Storm"]) == 0.0


def test_citation_markers_do_not_count_against_an_answer():
    assert measures.exact_match("JetBlue Airways [1][2]", ["JetBlue Airways"]) == 1.0
    assert measures.token_f1("1,383 [1]", ["1383"]) == 1.0


def test_token_f1_is_partial_credit():
    assert measures.token_f1("Seattle", ["Seattle Storm"]) == pytest.approx(2 / 3)
    assert measures.token_f1("", ["Seattle Storm"]) == 0.0
    assert measures.token_f1("twenty seven years", ["27 years"]) == 1.0


def test_contains_answer_needs_whole_tokens():
    assert measures.contains_answer("It happened in 1994, in May.", ["1994"]) == 1.0
    assert measures.contains_answer("Payments restart in September.", ["September"]) == 1.0
    assert measures.contains_answer("The company UPSide", ["UPS"]) == 0.0
    assert measures.contains_answer("anything", [""]) == 0.0


def test_a_pair_counts_in_either_order_but_not_half_of_it():
    assert measures.contains_answer("Finland and Sweden [1]", ["Sweden and Finland"]) == 1.0
    assert measures.exact_match("China & Russia", ["Russia and China"]) == 1.0
    assert measures.contains_answer("New Jersey [1]", ["New Jersey & Oregon"]) == 0.0
    assert measures.contains_answer("Sweden and Norway", ["Sweden and Finland"]) == 0.0


@pytest.mark.parametrize(
    ("answer", "pick"),
    [
        ("B) US Open", 1),
        ("c", 2),
        ("Option D", 3),
        ("Serena played the US Open this week.", 1),
        ("A drone strike", None),  # a sentence starting with "A" is not option A
        ("I don't know", None),
    ],
)
def test_pick_choice(answer, pick):
    assert measures.pick_choice(answer, ["Australian Open", "US Open", "French Open", "Wimbledon"]) == pick


def test_pick_choice_prefers_the_longest_option_named():
    assert measures.pick_choice("Russia and China", ["Russia", "China", "Russia and China", "India"]) == 2


def test_retrieval_metrics_on_deduplicated_article_ranking():
    ranked = measures.rank_articles(["x", "x", "y", "gold1", "y", "z", "gold2"])
    assert ranked == ["x", "y", "gold1", "z", "gold2"]
    gold = {"gold1", "gold2"}
    assert measures.hit_at_k(ranked, gold, 1) == 0.0
    assert measures.hit_at_k(ranked, gold, 5) == 1.0
    assert measures.recall_at_k(ranked, gold, 3) == 0.5
    assert measures.recall_at_k(ranked, gold, 5) == 1.0
    assert measures.reciprocal_rank(ranked, gold) == pytest.approx(1 / 3)
    assert measures.reciprocal_rank(["x"], gold) == 0.0


def test_refusal_metrics():
    refused = [True, True, False, False, True]
    unanswerable = [True, False, True, False, True]
    m = measures.refusal_metrics(refused, unanswerable)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["hallucination_rate"] == pytest.approx(1 / 3)
    assert m["wrong_refusal_rate"] == pytest.approx(1 / 2)


def test_refusal_metrics_without_unanswerable_questions_are_undefined_not_zero():
    m = measures.refusal_metrics([False, False], [False, False])
    assert m["recall"] is None and m["hallucination_rate"] is None and m["precision"] is None
    assert m["wrong_refusal_rate"] == 0.0


def test_citation_support():
    facts = ["The US killed al Qaeda leader Ayman al-Zawahiri in a drone strike."]
    assert measures.supports("Zawahiri led al Qaeda for a decade.", ["al Qaeda"], [])
    assert measures.supports("US killed Ayman al-Zawahiri in a drone strike on Sunday", ["nope"], facts)
    assert not measures.supports("Stocks rose on Tuesday.", ["al Qaeda"], facts)


def test_percentile():
    assert measures.percentile([], 50) is None
    assert measures.percentile([5.0], 95) == 5.0
    assert measures.percentile([1, 2, 3, 4], 50) == 2.5
    assert measures.percentile(list(range(101)), 95) == 95
