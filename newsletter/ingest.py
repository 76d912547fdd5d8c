"""`newsletter ingest`: files, folders and feeds in, one slug per article out."""
import click


@click.command("ingest")
def ingest_command() -> None:
    raise click.ClickException("not built yet")
