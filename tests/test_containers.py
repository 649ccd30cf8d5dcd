"""The container set-up keeps its promises (SETUP.md, "Containers"), read from the files themselves.

Docker does not run here; .ci/run also validates docker-compose.yml with `docker-compose config`. These
tests hold what that cannot: which service gets which privilege, what it shares, what it is told.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
UNCONFINED = {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_only_the_runner_gets_the_privileges_bubblewrap_needs(services: dict[str, dict[str, Any]]) -> None:
    runner = services["sandbox"]
    assert runner["command"] == ["python", "-m", "backend", "sandbox"]
    assert set(runner["security_opt"]) >= UNCONFINED and "no-new-privileges:true" in runner["security_opt"]
    assert runner["cap_drop"] == ["ALL"] and "SYS_ADMIN" not in runner["cap_add"]
    assert runner["network_mode"] == "none" and "ports" not in runner
    for name in ("api", "worker"):
        service = services[name]
        assert not UNCONFINED & set(service.get("security_opt", [])), name
        assert service["cap_drop"] == ["ALL"] and "cap_add" not in service, name
        assert service["user"] == "10001:10001" and service["read_only"] is True, name
        assert not service.get("privileged"), name


def test_the_runner_holds_no_secret_and_shares_only_its_socket(services: dict[str, dict[str, Any]]) -> None:
    runner = services["sandbox"]
    assert all(key.startswith("SANDBOX_") for key in runner["environment"])
    assert runner["volumes"] == ["sandbox-socket:/run/codementor"]
    sharing = [
        name for name, service in services.items() if "sandbox-socket:/run/codementor" in service.get("volumes", [])
    ]
    assert sorted(sharing) == ["api", "sandbox"]
    assert services["api"]["environment"]["SANDBOX_URL"] == runner["environment"]["SANDBOX_URL"]
    assert runner["environment"]["SANDBOX_REQUIRE_ISOLATION"] == "true"


def test_no_source_mount_pinned_images_and_loopback_ports(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert not volume.startswith((".", "/")), f"{name} mounts a host path: {volume}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if "build" in service:
            assert service["build"] == "."
        else:
            assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", service["image"]), f"{name}: unpinned {service['image']}"


def test_the_image_has_debians_python_and_bubblewrap_installed_at_build_time() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:12\.\d+-slim$", dockerfile, re.MULTILINE)
    assert "python:3" not in dockerfile  # its interpreter is in /usr/local, invisible inside bubblewrap
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    installs = re.search(r"apt-get install[^&]*", runtime)
    assert installs is not None
    assert {"python3", "bubblewrap", "util-linux", "procps"} <= set(installs.group(0).split())
    cmd = dockerfile[dockerfile.rindex("\nCMD ") :]
    assert "pip" not in cmd and "backend" in cmd
