"""`workshop provision` and `workshop teardown`: a workshop's objects in, and out, by its id.

A workshop is a name (unique on the cluster; by default generated from the time and a random
suffix, and printed) and an id generated at its first provision; both label every object, and
`<out>/workshop.json` records them so that the same `--out` resumes or tears down the same
workshop. Provision first checks that every namespace it would touch is absent or already this
workshop's (same id): a namespace that exists and is not ours, or the name in use by another
workshop, stops it before anything is changed. Then it server-side applies
`lab.workshop.objects` without forcing (a run that failed half-way is run again) and writes one
kubeconfig per learner, token from the TokenRequest API, mode 0600. Teardown deletes only the
objects labelled with the workshop's id (namespaces, their objects go with them, then the
admission policy), waits until they are gone, and says so when there is nothing to delete.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab.errors import LabError
from lab.i18n import _
from lab.manifests import Obj, render
from lab.settings import Settings
from lab.waits import poll
from lab.workshop.api import ClusterObject, InstructorApi, Namespace
from lab.workshop.capacity import largest_container, learner_footprint, steady_footprint
from lab.workshop.guard import BINDING_KIND, POLICY_KIND, policy_name
from lab.workshop.names import LABEL_WORKSHOP, LABEL_WORKSHOP_ID, SERVICE_ACCOUNT
from lab.workshop.objects import (
    Plan,
    all_objects,
    kubeconfig,
    learner_names,
    namespace_names,
    peer_egress,
    selector,
)

log = logging.getLogger(__name__)

DURATION = re.compile(r"(\d+)([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_TOKEN_SECONDS = 600  # the TokenRequest API refuses shorter expiries


def parse_duration(text: str) -> int:
    """The seconds of a duration such as 8h, 90m or 1d12h (at least the API's 10 minutes)."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise LabError(
            _("--token-expiry {text!r} is not a duration.").format(text=text),
            _("Write it like 8h, 90m or 1d12h."),
        )
    seconds = sum(int(n) * SECONDS[u] for n, u in parts)
    if seconds < MIN_TOKEN_SECONDS:
        raise LabError(
            _(
                "--token-expiry {text} is shorter than the 10 minutes the API server accepts."
            ).format(text=text),
            _("Give the workshop's length, e.g. 8h."),
        )
    return seconds


def learner_stack(settings: Settings) -> list[Obj]:
    """The objects a learner's `lab up --target cluster` applies into their namespace, and the
    backup add-on lesson 08 applies there."""
    return [*render("cluster", settings), *render("backup", settings)]


def make_plan(settings: Settings, learners: int, prefix: str, workshop: str, uid: str = "") -> Plan:
    """The learners' names, the quota sized from the rendered stack and the peer namespace's
    egress taken from it."""
    names = learner_names(learners, prefix)
    check_workshop_name(workshop)
    stack = learner_stack(settings)
    return Plan(
        workshop,
        names,
        learner_footprint(stack),
        steady_footprint(stack),
        largest_container(stack),
        uid,
        peer_egress(stack),
    )


# A label value (<= 63), and room for the admission policy's "ironclad-lab-" prefix.
WORKSHOP_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?")
WORKSHOP_ID = re.compile(r"[0-9a-f]{1,63}")  # what `new_uid` makes, as a label value
RECORD = "workshop.json"


def check_workshop_name(name: str) -> str:
    """`name` if it can label objects and name the admission policy, else LabError."""
    if not WORKSHOP_NAME.fullmatch(name):
        raise LabError(
            _("--workshop {name!r} is not a valid workshop name.").format(name=name),
            _(
                "Use at most 50 characters of a-z, 0-9 and '-', starting and ending with a letter "
                "or digit, or leave --workshop out to get a generated name."
            ),
        )
    return name


def new_workshop_name(now: datetime | None = None) -> str:
    """A name no other run makes: the UTC minute and 32 random bits
    (ironclad-20261206-0815-3fa9c2e1; with 16 bits, 50 names made in one minute collided in
    about one try in 50)."""
    when = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M")
    return f"ironclad-{when}-{secrets.token_hex(4)}"


def new_uid() -> str:
    return uuid.uuid4().hex


def check_workshop_id(uid: str) -> str:
    """`uid` if it is what provision generates (hex), else LabError."""
    if not WORKSHOP_ID.fullmatch(uid):
        raise LabError(
            _("{id!r} is not a workshop id.").format(id=uid),
            _("Copy the id provision printed (or the one in OUT/workshop.json): hex digits."),
        )
    return uid


@dataclass(frozen=True)
class Record:
    """What `<out>/workshop.json` keeps of a provisioned workshop."""

    workshop: str
    uid: str

    @staticmethod
    def path(out: Path) -> Path:
        return out / RECORD

    @classmethod
    def read(cls, out: Path) -> Record | None:
        """The record in `out`, None if there is none; LabError if it is unreadable."""
        path = cls.path(out)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                check_workshop_name(str(data["workshop"])), check_workshop_id(str(data["id"]))
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, LabError) as exc:
            raise LabError(
                _("{path} is not a workshop record ({error}).").format(path=path, error=exc),
                _("Pass --workshop NAME (and --id ID) explicitly, or another --out."),
            ) from exc

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"workshop": self.workshop, "id": self.uid}, indent=2) + "\n"
        self.path(out).write_text(text, encoding="utf-8")


def identity_to_provision(workshop: str | None, out: Path) -> tuple[Record, bool]:
    """(the workshop to provision, whether it resumes the one recorded in `out`): `--workshop`
    if given (refused if `out` records another), else the recorded one, else a new name."""
    recorded = Record.read(out)
    if recorded is not None:
        if workshop is not None and workshop != recorded.workshop:
            raise LabError(
                _("{record} records workshop {recorded}, not {workshop}.").format(
                    record=Record.path(out), recorded=recorded.workshop, workshop=workshop
                ),
                _(
                    "Pass another --out for a new workshop, or --workshop {recorded} (or none) to "
                    "re-run that one."
                ).format(recorded=recorded.workshop),
            )
        return recorded, True
    return Record(check_workshop_name(workshop or new_workshop_name()), new_uid()), False


def identity_to_find(workshop: str | None, uid: str | None, out: Path) -> tuple[str, str | None]:
    """(name, id or None) of the workshop status or teardown acts on: `--workshop`/`--id`, else
    the record in `out` (its id when the names agree)."""
    recorded = Record.read(out)
    if uid is not None:
        check_workshop_id(uid)
    if workshop is None:
        if recorded is None:
            raise LabError(
                _("Which workshop? {record} does not exist.").format(record=Record.path(out)),
                _(
                    "Pass --workshop NAME (provision printed it), or --out with the directory "
                    "provision wrote to."
                ),
            )
        return recorded.workshop, uid or recorded.uid
    if uid is None and recorded is not None and recorded.workshop == workshop:
        uid = recorded.uid
    return check_workshop_name(workshop), uid


@dataclass(frozen=True)
class Provisioned:
    """One learner's kubeconfig and when its token expires (the API may shorten it)."""

    learner: str
    kubeconfig: Path
    expires: datetime | None


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # an existing file keeps its old mode through O_CREAT


def foreign_objects(plan: Plan, api: InstructorApi) -> list[str]:
    """What provision would touch that is not this workshop's (another id, or none): the plan's
    namespaces and admission policy, and anything else labelled with the workshop's name."""
    problems = []
    for name in namespace_names(plan):
        found = api.namespace(name)
        if found is not None and found.labels.get(LABEL_WORKSHOP_ID) != plan.uid:
            owner = found.labels.get(LABEL_WORKSHOP)
            if owner:
                problem = _("namespace {name} exists and is workshop {owner}'s")
            else:
                problem = _("namespace {name} exists and is not a workshop's")
            problems.append(problem.format(name=name, owner=owner))
        elif found is not None and found.terminating:
            problems.append(
                _("namespace {name} is still being deleted (a teardown)").format(name=name)
            )
    for kind in (POLICY_KIND, BINDING_KIND):
        obj = api.cluster_object(kind, policy_name(plan.workshop))
        if obj is not None and obj.labels.get(LABEL_WORKSHOP_ID) != plan.uid:
            problems.append(
                _("{kind} {name} exists and is not this workshop's").format(
                    kind=kind, name=obj.name
                )
            )
    others = sorted(
        {n.labels.get(LABEL_WORKSHOP_ID, "?") for n in api.namespaces(selector(plan.workshop))}
        - {plan.uid}
    )
    if others:
        problems.append(
            _("the name {workshop} is taken by another provisioned workshop (id {ids})").format(
                workshop=plan.workshop, ids=", ".join(others)
            )
        )
    return problems


def provision(plan: Plan, api: InstructorApi, out: Path, token_seconds: int) -> list[Provisioned]:
    """Check that nothing provision would touch belongs to someone else, record the workshop in
    `out`, apply every object, then write `<out>/<learner>.kubeconfig` for each learner."""
    objects = all_objects(plan)
    problems = foreign_objects(plan, api)
    if problems:
        raise LabError(
            _("Nothing was changed: {problems}.").format(problems="; ".join(problems)),
            _(
                "Provision only creates what it owns. Choose another --prefix or --workshop, or "
                "ask whoever owns those objects; to re-run an earlier provision, pass the --out it "
                "wrote to (its workshop.json holds the workshop's id)."
            ),
        )
    Record(plan.workshop, plan.uid).write(out)
    log.info(
        _("applying {objects} objects for {learners} learners …").format(
            objects=len(objects), learners=len(plan.learners)
        )
    )
    api.apply(objects)
    endpoint = api.endpoint()
    done = []
    for learner in plan.learners:
        token = api.request_token(learner, SERVICE_ACCOUNT, token_seconds)
        path = out / f"{learner}.kubeconfig"
        write_private(path, kubeconfig(learner, endpoint, token.token))
        done.append(Provisioned(learner, path, token.expires))
    return done


@dataclass(frozen=True)
class Owned:
    """What teardown deletes: the workshop's namespaces and cluster-scoped objects."""

    workshop: str
    uid: str
    namespaces: tuple[str, ...]
    cluster_objects: tuple[ClusterObject, ...]

    def lines(self) -> list[str]:
        return [f"Namespace/{n}" for n in self.namespaces] + [
            f"{o.kind}/{o.name}" for o in self.cluster_objects
        ]


def owned(api: InstructorApi, workshop: str, uid: str | None) -> Owned:
    """The objects of workshop `workshop` with id `uid` (None: the one id its objects carry).
    LabError when there are none, or when `uid` is None and several workshops share the name."""
    everything = selector(workshop)
    found: list[Namespace | ClusterObject] = [*api.namespaces(everything)]
    for kind in (POLICY_KIND, BINDING_KIND):
        found += api.cluster_objects(kind, everything)
    ids = sorted({o.labels.get(LABEL_WORKSHOP_ID, "") for o in found})
    if uid is None:
        if len(ids) > 1:
            raise LabError(
                _("Several workshops are named {workshop} (ids {ids}).").format(
                    workshop=workshop, ids=", ".join(ids)
                ),
                _("Pass --id ID to say which one (its workshop.json has it)."),
            )
        uid = ids[0] if ids else None
    mine = [o for o in found if o.labels.get(LABEL_WORKSHOP_ID) == uid]
    if uid is None or not mine:
        if uid and ids:
            problem = _(
                "There is no workshop {workshop} with id {id} on this cluster (objects of that "
                "name carry id {ids}): nothing was deleted."
            )
        elif uid:
            problem = _(
                "There is no workshop {workshop} with id {id} on this cluster: nothing was deleted."
            )
        else:  # no id given and none found: no object carries the name
            problem = _("There is no workshop {workshop} on this cluster: nothing was deleted.")
        raise LabError(
            problem.format(workshop=workshop, id=uid, ids=", ".join(ids)),
            _(
                "Check --workshop, --id and --context (ironclad-lab workshop status lists the "
                "learners of a workshop)."
            ),
        )
    return Owned(
        workshop,
        uid,
        tuple(sorted(o.name for o in mine if isinstance(o, Namespace))),
        tuple(o for o in mine if isinstance(o, ClusterObject)),
    )


def teardown(api: InstructorApi, target: Owned, timeout: float = 300.0) -> None:
    """Delete `target`'s namespaces, wait until they are gone, then its admission policy (it
    guards the namespaces until they are)."""
    still_there = selector(target.workshop, target.uid)
    for name in target.namespaces:
        log.info(_("deleting namespace {name} …").format(name=name))
        api.delete_namespace(name)
    if target.namespaces:
        poll(
            lambda: not api.namespaces(still_there),
            what=_("the namespaces of workshop {workshop} to be deleted").format(
                workshop=target.workshop
            ),
            timeout=timeout,
            interval=1.0,
            diagnose=lambda: ", ".join(n.name for n in api.namespaces(still_there)),
        )
    for obj in target.cluster_objects:
        log.info(_("deleting {kind} {name} …").format(kind=obj.kind, name=obj.name))
        api.delete_cluster_object(obj.kind, obj.name)


def summary_lines(record: Record, resumed: bool, done: Sequence[Provisioned]) -> list[str]:
    """What provision printed: the workshop, then one line per learner."""
    if resumed:
        heading = _(
            "Workshop {workshop} (id {id}, re-run (same id)): `workshop status` and `workshop "
            "teardown` find it through the same --out, or --workshop {workshop}."
        )
    else:
        heading = _(
            "Workshop {workshop} (id {id}, new): `workshop status` and `workshop teardown` find "
            "it through the same --out, or --workshop {workshop}."
        )
    expires = _("{learner}: {kubeconfig} (token expires {expires})")
    unknown = _("{learner}: {kubeconfig} (token expires when the API says)")
    return [
        heading.format(workshop=record.workshop, id=record.uid),
        *(
            (expires if p.expires else unknown).format(
                learner=p.learner, kubeconfig=p.kubeconfig, expires=p.expires
            )
            for p in done
        ),
    ]
