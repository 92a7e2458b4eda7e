"""A learner workspace: the course copied out of the installed package into a directory of the
learner's, where the notebooks they edit and everything a run writes (build/) live, so that
nothing they save ever dirties a checkout.

`ironclad-lab init DIR` makes one; the lab then finds it by searching upwards from the working
directory (`lab.settings.find_repo_root`, the marker file `WORKSPACE_MARKER`). The marker also
records the learner's language (`init --lang`; `lab.settings.learner_language` reads it). The
workspace holds the course as the checkout does, in every language: the English notebooks in
notebooks/, the generated ones in notebooks/<lang>/ (where a learner of that language opens
them), their shared solutions in notebooks/solutions/ and the catalogs `lab.i18n.translate`
reads in notebooks/locale/. The course is the
package data of an installed wheel (lab/course/: pyproject.toml's force-include) or, in an
editable install, the checkout the package sits in; the backend's build context (for the kind
target's image) is the installed `backend` package with its Dockerfile.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import backend
from lab.errors import LabError
from lab.extras import installed_version
from lab.i18n import SOURCE_LANGUAGE, _
from lab.settings import (
    OUTPUT_DIR,
    WORKSPACE_LANGUAGE,
    WORKSPACE_MARKER,
    is_checkout,
    is_workspace,
)

COURSE = ("manifests", "notebooks", "docs")  # copied from the course as they are
BUILD_CONTEXT = "backend"  # the image kind builds: DIR/backend/Dockerfile, context DIR
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "README.md")
PACKAGED = Path(__file__).parent / "course"  # in a wheel: lab/course/{manifests,notebooks,docs}


def course_root() -> Path:
    """Where the course is: the package data of a wheel, else the checkout of an editable
    install; LabError for an install that carries neither."""
    if PACKAGED.is_dir():
        return PACKAGED
    checkout = Path(__file__).resolve().parents[1]
    if is_checkout(checkout):
        return checkout
    raise LabError(
        _("This ironclad-lab install has no course material ({folder} is missing).").format(
            folder=PACKAGED
        ),
        _(
            "Reinstall it from its wheel (pip install ironclad-lab, or pip install . in a "
            "checkout)."
        ),
    )


def refuse(target: Path) -> None:
    """LabError when `target` cannot become a workspace: an existing non-empty directory (a
    workspace already, or anything else), a file, or a place inside a checkout (but for its
    ignored build/) or a workspace (what the learner saves would land in it)."""
    if is_workspace(target):
        raise LabError(
            _("{target} is a workspace already.").format(target=target),
            _("Work in it: cd {target}. Nothing was changed.").format(target=target),
        )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise LabError(
            _("{target} exists and is not an empty directory.").format(target=target),
            _("Name a new directory (or an empty one). Nothing was written."),
        )
    for parent in target.parents:
        if is_checkout(parent) and target.is_relative_to(parent / OUTPUT_DIR):
            break  # the checkout's own output folder, which git ignores (`nox -s jupyter`'s)
        if is_checkout(parent) or is_workspace(parent):
            if is_checkout(parent):
                problem = _(
                    "{target} is inside {parent}, a lab checkout: the notebooks you save and the "
                    "runs' output would land in it."
                )
            else:
                problem = _(
                    "{target} is inside {parent}, a lab workspace: the notebooks you save and the "
                    "runs' output would land in it."
                )
            raise LabError(
                problem.format(target=target, parent=parent),
                _(
                    "Make the workspace outside it, e.g. ironclad-lab init ~/ironclad. Nothing was "
                    "written."
                ),
            )


def init(directory: Path, exist_ok: bool = False, language: str = SOURCE_LANGUAGE) -> Path:
    """Make the workspace `directory` (see the module docstring), recording `language`, and
    return its path; with `exist_ok`, a workspace there already is returned as it is. It is
    assembled beside it and renamed into place: on any failure nothing is left behind."""
    target = directory.expanduser().absolute()
    if exist_ok and is_workspace(target):
        return target
    refuse(target)
    source = course_root()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for part in COURSE:
            shutil.copytree(source / part, staging / part, ignore=SKIPPED)
        shutil.copytree(Path(backend.__file__).parent, staging / BUILD_CONTEXT, ignore=SKIPPED)
        marker = {
            "version": installed_version(),
            "course": str(source),
            WORKSPACE_LANGUAGE: language,
        }
        (staging / WORKSPACE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if target.exists():  # an empty directory: replaced by the assembled one
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def record_language(workspace: Path, language: str) -> None:
    """Set the language the marker of `workspace` records (what the lab speaks there)."""
    marker = workspace / WORKSPACE_MARKER
    recorded = json.loads(marker.read_text())
    recorded[WORKSPACE_LANGUAGE] = language
    marker.write_text(json.dumps(recorded, indent=2) + "\n")
