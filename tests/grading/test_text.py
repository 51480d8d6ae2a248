from llmlab.grading.text import normalize_answer


def test_squad_normalisation():
    assert normalize_answer("The  James Madison!") == "james madison"
    assert normalize_answer("  The Eiffel-Tower! ") == "eiffeltower"
    assert normalize_answer("An apple, a pear") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
