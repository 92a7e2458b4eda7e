"""Lesson 08 (backup and restore): the exercise on a backup schedule that meets a recovery point.

The learner writes the CronJob's `schedule`. The verifier puts it into the rendered CronJob
`postgres-backup`, runs it over four real weeks of calendar (cron's own rules: day of month and
day of week both restricted means either), and measures the longest stretch of time with no
backup: the worst recovery point the schedule allows. It must be at most `RPO_MINUTES`, with no
more backups than that takes (backups cost: I/O on the primary, storage, a job every time).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lab.exercises import Outcome, verifier
from lab.i18n import N_, _, ngettext
from lab.manifests import Obj, find

RPO_MINUTES = 60  # what the exercise's product owner accepts losing
CRONJOB = "postgres-backup"
SPAN = timedelta(weeks=4)
START = datetime(2027, 1, 4, tzinfo=UTC)  # a Monday: four whole weeks, a month boundary inside
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# A cron field's name (shown translated in errors), its lowest and highest value.
FIELDS = (
    (N_("minute"), 0, 59),
    (N_("hour"), 0, 23),
    (N_("day of month"), 1, 31),
    (N_("month"), 1, 12),
)
DOW = (N_("day of week"), 0, 7)  # 0 and 7 are both Sunday


def parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    """The values one cron field allows: `*`, `a`, `a-b`, with `/step`, comma-separated lists
    (ValueError saying which field and why otherwise; `name` is shown translated)."""
    field = _(name)
    values: set[int] = set()
    for part in text.split(","):
        body, _slash, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(
                _("{field}: step {step!r} is not a number").format(field=field, step=step_text)
            )
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(
                _("{field}: a step of {step} never advances").format(field=field, step=step)
            )
        if body == "*":
            first, last = low, high
        else:
            first_text, _dash, last_text = body.partition("-")
            if not first_text.isdigit() or (last_text and not last_text.isdigit()):
                raise ValueError(
                    _("{field}: {part!r} is not a number, a range or *").format(
                        field=field, part=part
                    )
                )
            first = int(first_text)
            last = int(last_text) if last_text else (high if step_text else first)
        if not low <= first <= last <= high:
            raise ValueError(
                _("{field}: {part!r} is outside {low}-{high}").format(
                    field=field, part=part, low=low, high=high
                )
            )
        values.update(range(first, last + 1, step))
    return frozenset(values)


def runs(schedule: str, start: datetime = START, span: timedelta = SPAN) -> list[datetime]:
    """Every minute in [start, start + span) at which `schedule` fires (UTC)."""
    fields = MACROS.get(schedule.strip(), schedule).split()
    if len(fields) != 5:
        raise ValueError(
            ngettext(
                "{count} field; a schedule has 5: minute hour day month weekday",
                "{count} fields; a schedule has 5: minute hour day month weekday",
                len(fields),
            ).format(count=len(fields))
        )
    minute, hour, dom, month = (
        parse_field(text, *spec) for text, spec in zip(fields[:4], FIELDS, strict=True)
    )
    dow = {d % 7 for d in parse_field(fields[4], *DOW)}
    either = fields[2] != "*" and fields[4] != "*"  # cron: both restricted -> either matches
    found, moment = [], start
    while moment < start + span:
        day_ok = (
            (moment.day in dom or moment.isoweekday() % 7 in dow)
            if either
            else (moment.day in dom and moment.isoweekday() % 7 in dow)
        )
        if moment.minute in minute and moment.hour in hour and moment.month in month and day_ok:
            found.append(moment)
        moment += timedelta(minutes=1)
    return found


def longest_gap(times: Sequence[datetime], span: timedelta = SPAN) -> timedelta:
    """The longest time without a backup, the schedule repeating after `span` (the gap from
    the last run wraps around to the first)."""
    if not times:
        return span
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    return max([*gaps, times[0] + span - times[-1]])


@verifier(
    "08-schedule",
    hint=N_(
        "The recovery point is the time since the last backup's snapshot, at its worst just "
        "before the next backup. Which gap between two backups is the longest, all week long — "
        "nights and weekends included? And would fewer backups still keep every gap short "
        "enough?"
    ),
)
def schedule(answer: object, objects: Sequence[Obj] | None = None, **_context: Any) -> Outcome:
    """The learner's schedule, put into the CronJob: every gap at most RPO_MINUTES, and no
    more backups than that needs."""
    if not isinstance(answer, str):
        return Outcome(
            False, _("a {type}, not a cron schedule (a string)").format(type=type(answer).__name__)
        )
    if objects is None:
        from lab import manifests
        from lab.session import session_settings

        objects = manifests.render("backup", session_settings())
    cronjob = copy.deepcopy(find(objects, "CronJob", CRONJOB))
    cronjob["spec"]["schedule"] = answer
    try:
        fired = runs(cronjob["spec"]["schedule"])
    except ValueError as exc:
        return Outcome(
            False,
            _("{answer!r} is not a schedule cron reads: {error}").format(answer=answer, error=exc),
        )
    gap = longest_gap(fired)
    needed = -(-SPAN // timedelta(minutes=RPO_MINUTES))  # ceil: the fewest that can do it
    facts = {"answer": answer, "count": len(fired), "minutes": gap.total_seconds() / 60}
    if gap > timedelta(minutes=RPO_MINUTES):
        return Outcome(
            False,
            ngettext(
                "{answer!r}: {count} backup in 4 weeks, longest stretch without one "
                "{minutes:g} minutes: writes of up to that long could be lost",
                "{answer!r}: {count} backups in 4 weeks, longest stretch without one "
                "{minutes:g} minutes: writes of up to that long could be lost",
                len(fired),
            ).format(**facts),
        )
    if len(fired) > needed:
        return Outcome(
            False,
            _(
                "{answer!r}: {count} backups in 4 weeks, longest stretch without one "
                "{minutes:g} minutes: the recovery point holds, with {extra} more backups than "
                "it needs"
            ).format(**facts, extra=len(fired) - needed),
        )
    return Outcome(
        True,
        _(
            "{answer!r}: {count} backups in 4 weeks, longest stretch without one "
            "{minutes:g} minutes"
        ).format(**facts),
    )
