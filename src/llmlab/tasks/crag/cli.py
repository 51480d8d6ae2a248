"""``llmlab crag``: serve the mock API over local KG files."""

from __future__ import annotations

import click


@click.group()
def crag() -> None:
    """CRAG tools: the mock knowledge-graph API."""


@crag.command("serve")
@click.option("--kg", "kg_dir", required=True, type=click.Path(), help="KG folder in the official cragkg layout.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def serve_cmd(kg_dir: str, host: str, port: int) -> None:
    """Serve the CRAG mock API (all five domains) over the KG files in --kg."""
    from llmlab.tasks.crag.server import check_kg_dir, serve

    domains = check_kg_dir(kg_dir)
    click.echo(f"CRAG mock API on http://{host}:{port} (domains: {', '.join(domains)})")
    serve(kg_dir, host, port)
