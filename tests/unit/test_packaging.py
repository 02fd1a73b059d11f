"""``pip install .`` installs a working server: the wheel carries the page and the script.

The wheel is built once for this module, from a copy of the checkout (so the
build leaves nothing in the work tree), with the setuptools already installed
and no network: ``pip wheel --no-deps --no-build-isolation --no-index``.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chat_server"
STATIC = PACKAGE / "static"
# Left out of the copy that is built: they are not source, and some are large.
NOT_SOURCE_AT_TOP = {".git", "venv", "build", "dist", "artifacts"}
# The page's <script> tags, as src and the rest of the tag.
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
SRC = re.compile(r"""\bsrc=["']([^"']+)["']""", re.IGNORECASE)
MODULE = re.compile(r"""\btype=["']module["']""", re.IGNORECASE)


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {
        name
        for name in names
        if (top and name in NOT_SOURCE_AT_TOP)
        or name.startswith(".venv")
        or name == "node_modules"
        or name.endswith((".egg-info", "_cache", "__pycache__"))
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    source = tmp_path_factory.mktemp("source") / "chat-server"
    shutil.copytree(ROOT, source, ignore=_not_source)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--no-index", "--wheel-dir", str(out), str(source)),
        ],
        check=True,
        timeout=100,
    )
    (built,) = out.glob("chat_server-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    pattern = re.compile(rf"[^/]+\.dist-info/{re.escape(name)}")
    (path,) = (p for p in wheel.namelist() if pattern.fullmatch(p))
    return wheel.read(path).decode()


def _page_scripts(wheel: zipfile.ZipFile) -> list[tuple[str, bool]]:
    """(wheel path, is a module) of each script that the wheel's index.html loads."""
    page = wheel.read("chat_server/static/index.html").decode()
    scripts = []
    for tag in SCRIPT_TAG.finditer(page):
        src = SRC.search(tag.group(1))
        assert src is not None, f"a script without src (inline) in index.html: {tag.group(0)}"
        assert src.group(1).startswith("/static/"), src.group(1)
        path = "chat_server/static/" + src.group(1).removeprefix("/static/")
        scripts.append((path, MODULE.search(tag.group(1)) is not None))
    return scripts


def _requirement_name(line: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    assert match is not None, line
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def test_the_wheel_carries_the_page(wheel: zipfile.ZipFile) -> None:
    page = wheel.read("chat_server/static/index.html").decode()
    assert "</html>" in page.lower()


def test_the_wheel_carries_the_pages_javascript_entry_module(wheel: zipfile.ZipFile) -> None:
    modules = [path for path, is_module in _page_scripts(wheel) if is_module]
    assert modules == ["chat_server/static/js/main.js"]
    assert modules[0] in _names(wheel)


def test_the_wheel_carries_the_vendored_socket_io_client(wheel: zipfile.ZipFile) -> None:
    client = "chat_server/static/vendor/socket.io.min.js"
    assert (client, False) in _page_scripts(wheel)
    assert wheel.read(client) == (STATIC / "vendor" / "socket.io.min.js").read_bytes()


def test_the_wheel_carries_the_vendored_clients_license_and_readme(
    wheel: zipfile.ZipFile,
) -> None:
    vendor = "chat_server/static/vendor/"
    assert {vendor + "socket.io-client.LICENSE", vendor + "README.md"} <= _names(wheel)


def test_the_wheel_carries_every_file_of_the_static_folder(wheel: zipfile.ZipFile) -> None:
    source = {
        "chat_server/" + path.relative_to(PACKAGE).as_posix()
        for path in STATIC.rglob("*")
        if path.is_file()
    }
    in_wheel = {name for name in _names(wheel) if name.startswith("chat_server/static/")}
    assert in_wheel == source


def test_the_wheel_carries_every_python_module_of_the_package(wheel: zipfile.ZipFile) -> None:
    source = {
        "chat_server/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert source <= _names(wheel)


def test_the_wheel_holds_nothing_but_chat_server_and_its_metadata(
    wheel: zipfile.ZipFile,
) -> None:
    tops = {name.split("/", 1)[0] for name in _names(wheel)} - {"chat_server"}
    assert len(tops) == 1
    assert re.fullmatch(r"chat_server-[^/-]+\.dist-info", tops.pop())


def test_the_wheel_declares_the_chat_server_console_script(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {"chat-server": "chat_server.__main__:main"}


def test_the_wheel_requires_what_requirements_txt_lists(wheel: zipfile.ZipFile) -> None:
    metadata = HeaderParser().parsestr(_dist_info(wheel, "METADATA"))
    required = {_requirement_name(line) for line in metadata.get_all("Requires-Dist", [])}
    listed = {
        _requirement_name(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    }
    assert required == listed
