"""The container image, run for real: `idsync run` inside it against the test's servers.

Built by `make image` (dev/image) from this tree first; skipped only where buildah is
missing or the tests do not run as root (buildah's chroot isolation needs it). Containers are
run with `buildah run --isolation chroot`, which shares the host's network: the servers on
127.0.0.1 are the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from bson import ObjectId

from idsync.version import __version__
from tests.conftest import ROOT, Env

pytestmark = pytest.mark.integration
IMAGE = f"localhost/idsync:{__version__}"
BASE = "localhost/idsync-base:bookworm"


def _exists(image: str) -> bool:
    found = subprocess.run(["buildah", "inspect", "--type", "image", image],
                           capture_output=True, check=False)  # fmt: skip
    return found.returncode == 0


def _buildah(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.skip("buildah (as root) is needed to run the image")
    if shutil.which("debootstrap") is None and not _exists(BASE):
        pytest.skip("debootstrap is needed to make the image's base here")
    # Built each time (its layers cached): the image under test is this tree's.
    built = subprocess.run([str(ROOT / "dev" / "image"), "build"], capture_output=True,
                           text=True, timeout=1800, check=False)  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    name = _buildah("from", "--quiet", IMAGE).strip()
    try:
        yield name
    finally:
        _buildah("rm", name)


def _inside(container: str, *argv: str, env: dict[str, str] | None = None) -> str:
    flags = [f"--env={key}={value}" for key, value in (env or {}).items()]
    return _buildah("run", "--isolation", "chroot", *flags, container, "--", *argv)


def test_the_image_runs_idsync_as_a_user_against_the_servers(container: str, env: Env) -> None:
    assert _inside(container, "id", "-u").strip() == "10001"  # not root
    assert _inside(container, "idsync", "--version").splitlines()[0] == f"idsync {__version__}"
    env.add_source([ObjectId() for _ in range(25)])
    urls = {"IDSYNC_MONGO_URI": env.mongo_uri, "IDSYNC_MYSQL_URL": env.mysql_url}
    _inside(container, "idsync", "init", env=urls)
    report = json.loads(_inside(container, "idsync", "run", "--json", "--no-log-ids", env=urls))
    assert (report["status"], report["inserted"]) == ("ok", 25)
    assert len(env.target_ids()) == 25


def test_the_image_is_configured_to_run_idsync(container: str) -> None:
    config = json.loads(_buildah("inspect", "--type", "image", IMAGE))["Docker"]["config"]
    assert config["Entrypoint"] == ["idsync"] and config["User"] == "10001"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])  # fits `watch --http`
