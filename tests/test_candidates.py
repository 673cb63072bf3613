"""Candidate answers drawn from the passages, and reading the model's pick among them."""

from newsqa.service.answering.candidates import answerable_by_candidates, candidates, pick
from newsqa.service.answering.context import Window
from newsqa.service.answering.lexical import split_sentences

BUDGET = ("Harborview City Council voted 7–2 on Tuesday, 11 March 2025, to approve a $412 million operating budget. "
          "Mayor Dolores Trevino said the tax rate holds at 1.08 percent. According to Councillor Marcus Bell, "
          "gusts reached 98 kilometres per hour and the strike lasted nine days.")


def window(text: str) -> Window:
    return Window(None, tuple(split_sentences(text)), 0)  # type: ignore[arg-type]


def test_names_figures_with_units_and_dates_are_offered_best_window_first():
    offered = candidates([window(BUDGET), window("Storm Edda hit Valewick.")])
    for expected in ("Harborview City Council", "11 March 2025", "7–2", "$412 million", "Mayor Dolores Trevino",
                     "1.08 percent", "Councillor Marcus Bell", "98 kilometres per hour", "nine days",
                     "Storm Edda", "Valewick"):
        assert expected in offered, expected
    assert offered.index("Harborview City Council") < offered.index("Storm Edda")
    assert "According" not in offered  # a sentence's first word, not a name


def test_a_sentence_offers_its_dates_first_then_names_then_figures():
    assert candidates([window(BUDGET)])[:3] == ["11 March 2025", "Harborview City Council", "Tuesday"]


def test_the_pick_is_the_longest_option_the_reply_names():
    options = ["New Jersey", "New", "Oregon"]
    assert pick("New Jersey.", options) == "New Jersey"
    assert pick("none", options) is None


def test_reasons_and_manners_are_not_offered_as_names():
    assert not answerable_by_candidates("Why were some Kia and Hyundai SUVs recalled?")
    assert not answerable_by_candidates("How did the police track it down?")
    assert answerable_by_candidates("How many homes were evacuated?")
    assert answerable_by_candidates("Who chaired the talks?")


def test_a_possessive_name_is_offered_as_the_name():
    offered = candidates([window("Syria's interim foreign minister met Iraq’s prime minister.")])
    assert "Syria" in offered and "Iraq" in offered
    assert not any(o.endswith(("'s", "’s")) for o in offered)
