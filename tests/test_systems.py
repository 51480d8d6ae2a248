from pathlib import Path

from llmlab.systems import BEGIN, END, SYSTEMS, systems_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "systems.md"


def test_docs_table_matches_catalogue():
    text = DOC.read_text()
    table = text.split(BEGIN)[1].split(END)[0].strip()
    assert table == systems_markdown().strip(), "run: python -m llmlab.systems"


def test_catalogue_is_complete_and_consistent():
    assert len(SYSTEMS) == 31 and len({s.arxiv for s in SYSTEMS}) == 31
    assert all(s.status in {"works", "partial", "planned"} for s in SYSTEMS)
    src = Path(__file__).resolve().parents[1] / "src" / "llmlab"
    for s in SYSTEMS:
        if s.status != "planned":  # a built system's module must exist
            assert (src / s.module).exists(), s
