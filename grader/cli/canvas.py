"""`grader canvas-push`: a gradebook file's scores sent to a Canvas assignment (the `canvas`
extra)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from grader.cli.options import user_errors


@click.command("canvas-push")
@click.argument("gradebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", required=True, help="The Canvas instance, e.g. https://canvas.example.edu.")
@click.option("--course", "course_id", type=int, required=True, help="Canvas's course id.")
@click.option(
    "--assignment-id",
    type=int,
    required=True,
    help="Canvas's assignment id: the file's column is the one whose header ends '(ID)'.",
)
@click.option(
    "--token-env",
    default="CANVAS_TOKEN",
    show_default=True,
    help="The environment variable holding a Canvas access token.",
)
@click.option("--dry-run", is_flag=True, help="Say what would change; send nothing.")
def canvas_push_command(
    gradebook: Path,
    url: str,
    course_id: int,
    assignment_id: int,
    token_env: str,
    dry_run: bool,
) -> None:
    """Push the scores in GRADEBOOK, Canvas's gradebook import CSV, to one assignment.

    Canvas's current scores are read first: each change is printed (old → new) and only
    changed scores are sent. Needs `pip install 'course-grader[canvas]'`.
    """
    from grader.api.canvas import PushOptions, canvas_push

    token = os.environ.get(token_env, "").strip()
    if not token:
        raise click.ClickException(
            f"no Canvas access token in ${token_env}: make one in Canvas (Account, Settings, "
            "New access token) and export it, or name another variable with --token-env"
        )
    options = PushOptions(gradebook, url, course_id, assignment_id, token, dry_run)
    with user_errors():
        report = canvas_push(options)
    click.echo(
        f"{report.assignment} (course {course_id}, assignment {assignment_id}): "
        f"{len(report.changes)} to change, {report.unchanged} unchanged, "
        f"{report.blank} blank in the file, {len(report.not_in_course)} not in the course"
    )
    for change in report.changes:
        old = "none" if change.old is None else f"{change.old:g}"
        score = change.score
        click.echo(f"  {score.name} ({score.user_id}): {old} → {score.points:g}")
    for score in report.not_in_course:
        click.echo(f"  not in the course, not sent: {score.name} ({score.user_id})")
    if dry_run:
        click.echo("dry run: nothing sent")
    elif report.changes:
        click.echo(f"sent {len(report.changes)} scores; Canvas applies them: {report.progress_url}")
