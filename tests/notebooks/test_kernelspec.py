"""The lab's kernel spec: a real kernel started from it has `%%cluster` before `import lab`.

The spec is installed into a temporary prefix (the way `nox -s jupyter` installs it into its
venv with `ironclad-lab kernelspec`), and jupyter_client starts the `python3` kernel from it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from lab import kernelspec, notrun


def test_a_cluster_cell_first_in_a_fresh_kernel_is_explained(tmp_path: Path) -> None:
    installed = kernelspec.install(tmp_path / "prefix")
    assert installed == tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "python3"
    specs = KernelSpecManager(kernel_dirs=[str(installed.parent)])
    assert specs.get_kernel_spec("python3").resource_dir == str(installed)
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env |= {"LAB_TARGET": "local", "LAB_STATE_FILE": str(tmp_path / "no-lab.json")}
    manager.start_kernel(env=env, cwd=str(tmp_path))
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        first = run(client, "%%cluster\nran = env.k8s.pods()\n")
        after = run(client, "print('ran' in dir(), 'lab' in dir())")
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
    assert [m["content"]["status"] for m in first if m["msg_type"] == "execute_reply"] == ["ok"]
    shown = [m["content"]["data"] for m in first if m["msg_type"] == "display_data"]
    assert len(shown) == 1
    assert shown[0][notrun.MIMETYPE]["calls"] == ["env.k8s.pods()"]
    assert shown[0][notrun.MIMETYPE]["target"] == "local"
    printed = "".join(m["content"].get("text", "") for m in after if m["msg_type"] == "stream")
    assert printed == "False False\n"  # the body did not run; nobody imported lab


def run(client: Any, code: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    reply = client.execute_interactive(code, timeout=60, output_hook=messages.append)
    return [*messages, reply]


def test_the_spec_starts_this_python_with_the_extension(tmp_path: Path) -> None:
    spec = json.loads((kernelspec.install(tmp_path) / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert "--ext=lab.magics" in spec["argv"]
    assert spec["display_name"] == kernelspec.DISPLAY_NAME


def test_in_a_venv_the_environment_spec_wins_over_the_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why installing into sys.prefix is enough: jupyter_core searches the venv's kernels
    before ~/.local/share/jupyter (unless JUPYTER_PATH or JUPYTER_PREFER_ENV_PATH=0 say other)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment")
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.delenv("JUPYTER_PREFER_ENV_PATH", raising=False)
    dirs = KernelSpecManager().kernel_dirs
    env_dir = str(Path(sys.prefix) / "share" / "jupyter" / "kernels")
    user_dir = str(Path.home() / ".local" / "share" / "jupyter" / "kernels")
    assert dirs.index(env_dir) < dirs.index(user_dir)
