"""Operator commands: dead letters, replays, connector pauses, health."""

from __future__ import annotations

import json
import sys

import typer

from hub.cli.common import fail, load_settings, run
from hub.cli.flows_cmd import _since
from hub.flows import FLOWS
from ops.audit import current_operator
from ops.connectors import set_connector_paused
from ops.dlq import DeadLetterFilter, hub_stages, read_dead_letters
from ops.health import DEFAULT_DEAD_LETTER_WINDOW, stage_health
from ops.replay import replay
from relais.flows.kit import partners_of

dlq_app = typer.Typer(help="Inspect dead-letter topics (relais.dlq.<stage>).")
connector_app = typer.Typer(help="Hold a partner's calls during an outage, then release them.")


def _filter(stage: list[str], member: str, flow: str, error: str, since: str) -> DeadLetterFilter:
    stages = hub_stages(FLOWS)
    unknown = set(stage) - set(stages)
    if unknown:
        fail(f"unknown stage(s) {sorted(unknown)}; stages: {', '.join(stages)}")
    return DeadLetterFilter(
        stages=tuple(stage) or stages, member=member or None, flow_id=flow or None,
        error=error or None, since=_since(since),
    )


StageOpt = typer.Option([], "--stage", help="Only this stage (repeatable).")
MemberOpt = typer.Option("", help="Only this member (SIREN).")
FlowOpt = typer.Option("", "--flow", help="Only this flow id.")
ErrorOpt = typer.Option("", help="Error code prefix or error class name part.")
SinceOpt = typer.Option("", help="30m, 2h, 7d or an ISO date-time.")


@dlq_app.command("list")
def dlq_list(stage: list[str] = StageOpt, member: str = MemberOpt, flow: str = FlowOpt,
             error: str = ErrorOpt, since: str = SinceOpt,
             limit: int = typer.Option(50, help="At most this many lines (0: all).")) -> None:
    """One line per dead letter: where it is, its flow, member and error."""
    settings = load_settings()

    async def go() -> int:
        count = 0
        async for letter in read_dead_letters(settings.bootstrap_servers,
                                              _filter(stage, member, flow, error, since)):
            count += 1
            if not limit or count <= limit:
                typer.echo(f"{letter.ref}  {letter.timestamp:%Y-%m-%d %H:%M:%S}  "
                           f"{letter.flow_id or '-'}  member={letter.member or '-'}  "
                           f"{letter.error_code}  replays={letter.replay_count}")
        return count

    typer.echo(f"{run(go())} dead letters match")


@dlq_app.command("show")
def dlq_show(
    ref: str = typer.Argument(..., help="topic:partition:offset, as `dlq list` prints."),
) -> None:
    """One dead letter with every header (the error context) and its value's size."""
    settings = load_settings()
    try:
        topic, partition, offset = ref.rsplit(":", 2)
        stage = topic.removeprefix("relais.dlq.")
    except ValueError:
        fail("give the dead letter as topic:partition:offset")
        return

    async def go() -> dict[str, object] | None:
        async for letter in read_dead_letters(settings.bootstrap_servers,
                                              DeadLetterFilter(stages=(stage,))):
            if letter.partition == int(partition) and letter.offset == int(offset):
                return {
                    "ref": letter.ref, "timestamp": letter.timestamp.isoformat(),
                    "key": letter.key.decode("utf-8", "replace") if letter.key else None,
                    "value_bytes": len(letter.value or b""),
                    "headers": {k: v.decode("utf-8", "replace") for k, v in letter.headers},
                }
        return None

    found = run(go())
    if found is None:
        fail(f"no dead letter {ref}")
    typer.echo(json.dumps(found, indent=2, ensure_ascii=False))


@dlq_app.command("stats")
def dlq_stats(since: str = SinceOpt) -> None:
    """Dead letters counted by stage and error code."""
    settings = load_settings()

    async def go() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        async for letter in read_dead_letters(settings.bootstrap_servers,
                                              DeadLetterFilter(hub_stages(FLOWS),
                                                               since=_since(since))):
            key = (letter.stage, letter.error_code)
            counts[key] = counts.get(key, 0) + 1
        return counts

    counts = run(go())
    for (stage, code), count in sorted(counts.items()):
        typer.echo(f"{stage:<18} {code:<28} {count}")
    typer.echo(f"{sum(counts.values())} dead letters")


def replay_cmd(
    stage: list[str] = StageOpt, member: str = MemberOpt, flow: str = FlowOpt,
    error: str = ErrorOpt, since: str = SinceOpt,
    reason: str = typer.Option(..., help="Why (kept in the audit journal)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be replayed."),
    rate: float = typer.Option(50.0, help="Records per second at most."),
    max_replays: int = typer.Option(3, help="Loop guard: refuse a record replayed this often."),
) -> None:
    """Send dead letters back to the stage they failed in: audited, rate-limited, resumable.

    A dead letter already replayed is refused, so running the same command again after an
    interruption resumes it, and replaying twice sends nothing twice.
    """
    settings = load_settings()
    show_progress = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show_progress:
            width = 30
            filled = width * done // max(total, 1)
            print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
                  file=sys.stderr, flush=True)

    report = run(replay(
        settings.bootstrap_servers, _filter(stage, member, flow, error, since),
        operator=current_operator(), reason=reason, dry_run=dry_run, rate=rate,
        max_replays=max_replays, progress=progress,
    ))
    if show_progress:
        print(file=sys.stderr)
    if dry_run:
        for letter in report.planned:
            typer.echo(f"would replay {letter.ref} → {letter.origin_topic}  "
                       f"{letter.flow_id or '-'}  {letter.error_code}")
    typer.echo(f"run {report.run_id}: {report.matched} matched, "
               f"{len(report.planned) if dry_run else report.replayed} "
               f"{'would be replayed' if dry_run else 'replayed'}, "
               f"{sum(report.refused.values())} refused")
    for why, count in sorted(report.refused.items()):
        typer.echo(f"  refused ({why}): {count}")


def known_partner(partner: str) -> str:
    """``partner`` if a declared flow calls it; else the command fails, listing them."""
    partners = partners_of(FLOWS)
    if partner not in partners:
        fail(f"unknown partner {partner!r}; partners: {', '.join(partners) or '(none)'}")
    return partner


PartnerArg = typer.Argument(..., help="The partner (as the flows declare it, e.g. the TdT).")


def _control(partner: str, paused: bool, reason: str) -> None:
    known_partner(partner)
    settings = load_settings()
    run(set_connector_paused(settings, partner, paused=paused, reason=reason,
                             operator=current_operator()))


@connector_app.command()
def pause(partner: str = PartnerArg,
          reason: str = typer.Option(..., help="Why (kept in the audit journal).")) -> None:
    """Hold every call to a partner: its stages stop consuming, flows wait (not fail)."""
    _control(partner, True, reason)
    typer.echo(f"{partner} paused; its flows wait until `relais connector resume {partner}`")


@connector_app.command()
def resume(partner: str = PartnerArg,
           reason: str = typer.Option("outage over", help="Why (audit journal).")) -> None:
    """Release a paused partner: its stages resume where they stopped."""
    _control(partner, False, reason)
    typer.echo(f"{partner} resumed")


def health(
    max_age: float = typer.Option(300.0, help="Seconds a waiting record may be overdue."),
    dead_letter_window: float = typer.Option(
        DEFAULT_DEAD_LETTER_WINDOW,
        help="Seconds a dead letter stays open: one written more recently and not replayed "
        "(relais replay) makes its stage unhealthy.",
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Lag, oldest overdue record and open dead letters per stage; exit 1 and name the stages
    that are stuck or hold dead letters younger than --dead-letter-window and not replayed."""
    settings = load_settings()
    stages = run(stage_health(settings.bootstrap_servers, settings.app_id, FLOWS,
                               dead_letter_window))
    unhealthy = [s for s in stages if s.problems(max_age)]
    if as_json:
        typer.echo(json.dumps([s.__dict__ | {"stuck": s.stuck(max_age),
                                             "problems": s.problems(max_age)} for s in stages],
                              indent=2))
    else:
        for s in stages:
            age = f"{s.oldest_age:.0f} s" if s.oldest_age is not None else "-"
            flag = "  STUCK" if s.stuck(max_age) else ""
            flag += "  OPEN DEAD LETTERS" if s.open_dead_letters else ""
            typer.echo(f"{s.stage:<18} lag={s.lag:<7} oldest overdue={age:<8} "
                       f"dead letters={s.dead_letters} (open {s.open_dead_letters}){flag}")
    if unhealthy:
        names = "; ".join(f"{s.stage} ({', '.join(s.problems(max_age))})" for s in unhealthy)
        typer.secho(f"unhealthy: {names}; overdue threshold {max_age:.0f} s, dead-letter "
                    f"window {dead_letter_window:.0f} s", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo("healthy")
