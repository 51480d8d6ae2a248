from __future__ import annotations

from click.testing import CliRunner

from llmlab.cli import cli
from llmlab.methods.prompting.base import TECHNIQUES
from llmlab.methods.prompting.taxonomy import TAXONOMY, taxonomy_rows


def test_every_technique_is_in_the_taxonomy_and_every_name_exists() -> None:
    named = {name for entries in TAXONOMY.values() for _, name in entries if name is not None}
    taxonomy_rows()  # loads the techniques
    assert named <= set(TECHNIQUES)
    assert set(TECHNIQUES) - named == {"direct"}


def test_llmlab_list_prompting() -> None:
    result = CliRunner().invoke(cli, ["list", "prompting"])
    assert result.exit_code == 0, result.output
    rows = taxonomy_rows()
    done = sum(r[2] != "-" for r in rows)
    assert f"{done} of {len(rows)} listed techniques implemented" in result.output
    for family in TAXONOMY:
        assert family in result.output
    assert "chain_of_verification" in result.output and "2309.11495" in result.output
