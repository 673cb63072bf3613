"""Grounding as a reader sees it: answers stand only on a quoted sentence that states them, else refused."""

import pytest

from newsqa.service.answering.context import Window
from newsqa.service.answering.grounding import clean_answer, echoes_question, fills_slot, ground
from newsqa.service.answering.lexical import Idf, split_sentences, terms
from newsqa.service.answering.retrieval import Passage
from newsqa.store.index import StoredChunk
from newsqa.store.models import ChunkMeta, headed

MIN_COVERAGE = 0.4
TITLE = "Iraq condemns massacre in coastal Syria"
MASSACRE = ("Hussein reiterated Iraq's condemnation of the massacre of at least 1,383 civilians in coastal "
            "Syria. Most of the victims were Alawites.")
RUFAYI = ("Sudani acknowledged the targeting of Abdullah Makki Muslih al-Rufayi, a notorious IS leader. "
          "His elimination resulted from Iraqi intelligence operations with the U.S.-led coalition.")
CITY = "Baghdad is home to about 7 million people. Al-Rashid Street is its oldest avenue."
OTHERS = [  # background, so that common words ("al", "Iraq") weigh less than rare ones ("Rufayi")
    ("Al-Sudani visits Tehran", "Iraq's al-Sudani met Iranian officials in Tehran on Sunday."),
    ("Al-Shaibani in Baghdad", "Syria's al-Shaibani and Iraq's Fuad Hussein met in Baghdad."),
]


def passage(n: int, text: str, title: str = TITLE) -> Passage:
    meta = ChunkMeta(article_id=f"a{n}", content_hash="h", title=title, chunk_index=0, start=0, end=len(text),
                     source="newarab.com")
    return Passage(StoredChunk(f"a{n}:0", text, meta), score=1.0 / n)


def window(p: Passage) -> Window:
    sentences = tuple(split_sentences(p.text))
    return Window(p, sentences, best=0)


PASSAGES = [passage(1, MASSACRE), passage(2, RUFAYI, "Sudani: IS leader killed"), passage(3, CITY, "Baghdad")]
IDF = Idf.counted([terms(p.headed_text) for p in PASSAGES] + [terms(headed(t, b)) for t, b in OTHERS])


def check(question: str, raw: str):
    return ground(question, raw, [window(p) for p in PASSAGES], PASSAGES, IDF, MIN_COVERAGE)


@pytest.mark.parametrize("raw", ["1,383", "1383", "at least 1,383 civilians."])
def test_a_stated_number_is_cited_with_the_sentence_that_states_it(raw):
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", raw)
    assert not verdict.refused
    assert [s.passage.chunk_id for s in verdict.supports] == ["a1:0"]
    assert "1,383" in verdict.supports[0].quote and "Alawites" not in verdict.supports[0].quote


def test_a_stated_name_is_cited():
    verdict = check("Who killed al-Rufayi?", "Iraqi intelligence operations")
    assert not verdict.refused
    assert "Iraqi intelligence operations" in verdict.supports[0].quote


@pytest.mark.parametrize("raw", ["7,000 civilians", "Turkish drones", "2,000"])
def test_an_answer_no_passage_states_is_refused(raw):
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", raw)
    assert verdict.refused and verdict.supports == []


def test_a_number_stated_about_something_else_is_refused():
    # "7 million" is in the sources, but about Baghdad's population, not the massacre.
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", "7 million")
    assert verdict.refused
    assert "address the question" in verdict.reason


def test_the_models_own_citation_markers_are_discarded():
    assert clean_answer("1,383 [3] [2].\nThe second line is ignored.") == "1,383"
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", "1,383 [2][3]")
    assert verdict.answer == "1,383"
    assert [s.passage.chunk_id for s in verdict.supports] == ["a1:0"]  # not the passages the model named


@pytest.mark.parametrize("raw", ["NOT FOUND", "Not found.", "The passages cannot tell.", "", "[1]"])
def test_a_model_that_finds_nothing_is_refused(raw):
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", raw)
    assert verdict.refused and verdict.supports == []


def test_an_answer_that_names_the_questions_subject_is_an_echo():
    question = "Who killed al-Rufayi?"
    assert echoes_question("Abdullah Makki Muslih al-Rufayi", question, IDF)
    assert echoes_question("al-Rufayi [1]", question, IDF)
    assert not echoes_question("Iraqi intelligence operations", question, IDF)
    assert not echoes_question("al-Qaeda", question, IDF)  # shares only the common "al"


def test_an_answer_that_says_nothing_the_question_did_not_is_an_echo():
    question = "Which national team did England's coach lead before?"
    assert echoes_question("England", question, IDF)
    assert echoes_question("the national team", question, IDF)
    assert not echoes_question("the Netherlands", question, IDF)


@pytest.mark.parametrize("raw", ["1,383 [1, 2]", "1,383 [Passage 1]"])
def test_other_citation_marker_styles_are_discarded_too(raw):
    verdict = check("How many civilians were killed in the massacre in coastal Syria?", raw)
    assert verdict.answer == "1,383" and not verdict.refused


def test_an_answer_that_contains_unknown_is_not_taken_for_a_refusal():
    basra = passage(4, "Unknown gunmen killed three people in a raid on a market in Basra on Monday.", "Basra raid")
    verdict = ground("Who killed three people in Basra?", "Unknown gunmen", [window(basra)], [basra], IDF, MIN_COVERAGE)
    assert not verdict.refused and "Unknown gunmen" in verdict.supports[0].quote


def test_an_answer_stands_on_the_passage_that_addresses_the_question_even_if_another_ranks_higher():
    """A passage may state the answer more fully without being about the question: it must not veto one that is."""
    question = "Who warned that the quay barriers in Valewick might fail on Monday?"
    elsewhere = passage(4, "Harriet Lowe of Penmore warned of rain on Monday.", "Penmore weather")
    on_topic = passage(5, "Harriet Lowe said the quay barriers might not hold.", "Valewick storm")
    background = passage(6, "The Penmore lighthouse reopened after repairs in Penmore harbour.", "Penmore lighthouse")
    passages = [elsewhere, on_topic, background]
    idf = Idf.counted([terms(p.headed_text) for p in passages + PASSAGES])
    verdict = ground(question, "Harriet Lowe of Penmore", [window(p) for p in passages], passages, idf, MIN_COVERAGE)
    assert not verdict.refused
    assert [s.passage for s in verdict.supports] == [on_topic]


@pytest.mark.parametrize(("question", "answer", "fits"), [
    ("How many civilians were killed?", "at least 1,383", True),
    ("How long were the dockers on strike?", "nine days", True),
    ("How many civilians were killed?", "Alawites", False),
    ("When did the council approve the budget?", "on Tuesday, 11 March", True),
    ("What day did the tablet go on sale?", "2 June", True),
    ("When did the council approve the budget?", "Mayor Dolores Trevino", False),
    ("Who killed al-Rufayi?", "Iraqi intelligence", True),
    # a nation is a country, under its ISO name or the one news uses; a person or a demonym is not
    ("The prime minister of which European nation stepped down?", "Mario Draghi", False),
    ("The prime minister of which European nation stepped down?", "Italian", False),
    ("The prime minister of which European nation stepped down?", "Italy", True),
    ("Which country declared victory over Covid?", "North Korea", True),
    ("Which country do the tourists come from?", "Russia", True),
    ("Which country declared victory over Covid?", "South Korea's Unification Ministry", False),
    ("Which nation won the Euro 2017?", "the Netherlands", True),
    ("Which US state is facing a water crisis?", "Jackson", False),
    ("Which US state is facing a water crisis?", "Mississippi", True),
    ("Which Indian state held the vote?", "Kerala", True),
    ("Which German state held the vote?", "Bavaria", True),
    ("Which state-owned company won the bid?", "Gazprom", True),  # not a question about a state
    # "who" and "which" want a name or a thing: a bare figure, date or day names nobody
    ("Who runs the Nordhaven Polar Institute?", "21 May 2025", False),
    ("She made history. Whose seat is she filling?", "Friday", False),
    ("Which 23-time grand slam champion will retire?", "seven", False),
    ("Which 23-time grand slam champion will retire?", "Serena Williams", True),
    ("Who pulled drivers out of the floodwater?", "the fire service", True),
    ("Who led the government?", "Theresa May", True),
    ("Which year was Lemonade released?", "2016", True),  # the time slot applies, not the name slot
    ("The terrorist, who was killed, led which group?", "al Qaeda", True),
    ("How many people, who were there, voted yes?", "1,214", True),  # a clause's "who" asks for nothing
])
def test_an_answer_must_be_the_kind_of_thing_the_question_asks_for(question, answer, fits):
    assert fills_slot(question, answer) is fits

