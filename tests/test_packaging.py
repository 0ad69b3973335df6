"""Packaging: the desktop entry, the AppStream metainfo, the PyInstaller files, and the wheel.

The fast tests read the files in packaging/. The wheel tests build the project's wheel from a
copy of the sources; the slow one installs it into a fresh venv and trains the demo for one
epoch from a folder outside the checkout, so resources must be found through
``importlib.resources`` in the installed copy, never next to the source tree.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "sskt-studio.desktop"
APP_ID = "io.github.sskt_studio.SSKTStudio"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
ICONS = ROOT / "resources" / "icons"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

# The install-and-train test spends ~1 s on the venv and the install, the rest on torch's import
# and one demo epoch (about a minute on two idle cores): it runs by default, so CI proves an
# installed wheel finds its resources; SSKT_SKIP_SLOW_TESTS=1 leaves it out.
RUN_SLOW = os.environ.get("SSKT_SKIP_SLOW_TESTS") != "1"


# ----------------------------------------------------------------------------- desktop entry

def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive in desktop files
    parser.read_string(DESKTOP.read_text(encoding="utf-8"), source=str(DESKTOP))
    return parser["Desktop Entry"]


def test_desktop_entry_has_the_keys_a_menu_needs():
    entry = desktop_entry()
    for key in ("Type", "Name", "Exec", "Icon", "Categories", "Comment"):
        assert entry.get(key, "").strip(), f"{DESKTOP.name}: {key} is missing or empty"
    assert entry["Type"] == "Application"
    assert entry["Name"] == "SSKT Studio"
    assert entry.getboolean("Terminal") is False
    categories = entry["Categories"]
    assert categories.endswith(";"), "a desktop list value ends with ';'"
    main_categories = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics",
                       "Network", "Office", "Science", "Settings", "System", "Utility"}
    assert main_categories & set(categories.split(";")), f"no main category in {categories!r}"


def test_desktop_entry_starts_the_installed_gui_program():
    program = desktop_entry()["Exec"].split()[0]
    assert program in PROJECT["gui-scripts"], f"Exec runs {program!r}, not a gui-script of pyproject.toml"
    assert desktop_entry()["TryExec"] == program


def test_desktop_icon_exists_as_svg_and_pngs():
    name = desktop_entry()["Icon"]
    assert "/" not in name and not name.endswith((".png", ".svg")), "Icon names a themed icon, not a file"
    svg = ICONS / f"{name}.svg"
    assert svg.is_file()
    ET.parse(svg)  # well-formed
    for size in (16, 32, 48, 64, 128, 256):
        png = ICONS / f"{name}-{size}.png"
        assert png.is_file(), f"missing {png.relative_to(ROOT)}"
        header = png.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
        assert (width, height) == (size, size), f"{png.name} is {width}x{height}"


def test_desktop_entry_id_is_the_one_the_window_announces():
    # QGuiApplication.setDesktopFileName ties the running window to this entry (Wayland app id,
    # the icon in docks and task switchers).
    names = []
    for source in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        names += [node.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "setDesktopFileName"
                  and node.args and isinstance(node.args[0], ast.Constant)]
    assert names and set(names) == {DESKTOP.stem}, names


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils not installed")
def test_desktop_file_validate_accepts_it():
    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# ----------------------------------------------------------------------------- AppStream metainfo

def test_metainfo_parses_and_names_the_desktop_entry():
    component = ET.parse(METAINFO).getroot()
    assert component.tag == "component" and component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID, "the file is named after the component id"
    launchables = [el.text for el in component.findall("launchable") if el.get("type") == "desktop-id"]
    assert launchables == [DESKTOP.name]
    for tag in ("name", "summary", "metadata_license", "project_license"):
        assert (component.findtext(tag) or "").strip(), f"<{tag}> missing"
    assert component.findtext("name") == desktop_entry()["Name"]
    assert component.find("description/p") is not None


def test_metainfo_agrees_with_pyproject():
    component = ET.parse(METAINFO).getroot()
    binaries = {el.text for el in component.findall("provides/binary")}
    assert binaries == set(PROJECT["scripts"]) | set(PROJECT["gui-scripts"])
    versions = [el.get("version") for el in component.findall("releases/release")]
    assert versions and versions[0] == PROJECT["version"], "newest release first, and it is this version"
    license = PROJECT["license"]
    assert component.findtext("project_license") == (license if isinstance(license, str) else license["text"])


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream not installed")
def test_appstreamcli_validate_finds_no_error_or_warning():
    result = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color", str(METAINFO)],
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    issues = [line for line in output.splitlines() if line.startswith(("E:", "W:"))]
    assert not issues, output


# ----------------------------------------------------------------------------- PyInstaller files

def test_pyinstaller_spec_and_entry_scripts_are_consistent():
    spec = (PACKAGING / "sskt-studio.spec").read_text(encoding="utf-8")
    compile(spec, "sskt-studio.spec", "exec")
    # Each frozen program runs the same function as the console/gui script pip installs.
    for entry, scripts, program in (("entry_gui.py", PROJECT["gui-scripts"], "sskt-studio"),
                                    ("entry_cli.py", PROJECT["scripts"], "sskt")):
        module, func = scripts[program].split(":")
        tree = ast.parse((PACKAGING / entry).read_text(encoding="utf-8"))
        imports = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   for alias in node.names}
        assert (module, func) in imports, f"{entry} does not run {scripts[program]}"
        assert f'name="{program}"' in spec
        assert entry in spec


def test_build_scripts_are_valid_bash():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    for script in ("build.sh", "install-desktop-files.sh", "smoke-test.sh"):
        path = PACKAGING / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_install_desktop_files_lays_out_a_freedesktop_tree(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    env = dict(os.environ, PREFIX="/usr", DESTDIR=str(tmp_path), EXEC="/opt/sskt-studio/sskt-studio")
    result = subprocess.run([bash, str(PACKAGING / "install-desktop-files.sh")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    share = tmp_path / "usr" / "share"
    installed = (share / "applications" / DESKTOP.name).read_text(encoding="utf-8")
    assert "\nExec=/opt/sskt-studio/sskt-studio %f\n" in installed
    assert (share / "metainfo" / METAINFO.name).is_file()
    assert (share / "icons/hicolor/scalable/apps/sskt-studio.svg").is_file()
    assert (share / "icons/hicolor/48x48/apps/sskt-studio.png").is_file()


# ----------------------------------------------------------------------------- the wheel

def _source_copy(dest: Path) -> Path:
    """What setuptools needs to build the wheel, copied: building in the checkout would leave
    build/ and *.egg-info there, and race with anyone else building at the same time."""
    setuptools_cfg = PYPROJECT["tool"]["setuptools"]
    package_dir = setuptools_cfg.get("package-dir", {})
    tops = set()
    for package in setuptools_cfg["packages"]:
        top = package.split(".")[0]
        tops.add(package_dir.get(top, top))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top in sorted(tops):
        shutil.copytree(ROOT / top, dest / top, ignore=ignore)
    for name in ("pyproject.toml", PROJECT["readme"]):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def _can_build_without_isolation() -> bool:
    """This venv's setuptools is new enough for pyproject.toml (>= 68) and builds wheels by
    itself (>= 70.1; older ones need the `wheel` package): then no download is needed."""
    from importlib import metadata

    try:
        version = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if version >= (70, 1):
        return True
    try:
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return version >= (68, 0)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = _source_copy(work / "src")
    out = work / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)]
    if _can_build_without_isolation():  # offline, and seconds faster than an isolated build
        command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("sskt_studio-*.whl"))
    assert len(wheels) == 1, wheels
    print(f"\nwheel: {wheels[0].name}, {wheels[0].stat().st_size / 1e6:.2f} MB")
    return wheels[0]


def _shipped_suffixes() -> set[str]:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["sskt_resources"]
    return {Path(p).suffix for p in patterns} | {".py"}


@pytest.mark.slow
def test_wheel_holds_every_resource_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    resources = ROOT / "resources"
    expected = {f"sskt_resources/{p.relative_to(resources).as_posix()}" for p in resources.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix in _shipped_suffixes()}
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    presets = [n for n in names if n.startswith("sskt_resources/presets/") and n.endswith(".yaml")]
    assert presets, "no preset in the wheel"
    models = sorted(resources.glob("models/*.safetensors"))  # the demo's source model, once it exists
    for model in models:
        assert f"sskt_resources/models/{model.name}" in names
    assert "sskt_resources/icons/sskt-studio.svg" in names
    for package in ("app", "app/widgets", "sskt_engine", "sskt_engine/models", "sskt_engine/data",
                    "sskt_engine/methods"):
        assert f"{package}/__init__.py" in names
    stray = sorted({n.split("/")[0] for n in names} - {"app", "sskt_engine", "sskt_resources"}
                   - {n.split("/")[0] for n in names if ".dist-info/" in n})
    assert not stray, f"unexpected top-level entries in the wheel: {stray}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "sskt = sskt_engine.cli:main" in text and "sskt-studio = app.main:main" in text


def _venv_bin(venv: Path, program: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (program + (".exe" if os.name == "nt" else ""))


@pytest.mark.slow
@pytest.mark.skipif(not RUN_SLOW, reason="SSKT_SKIP_SLOW_TESTS=1 leaves out the wheel install-and-train test")
def test_installed_wheel_trains_the_demo_from_outside_the_checkout(wheel, tmp_path):
    if not (ROOT / "resources" / "presets" / "demo.yaml").is_file():
        pytest.skip("resources/presets/demo.yaml is not in the checkout yet")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = _venv_bin(venv, "python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # torch, PySide6 & co. come from this test's own venv instead of a multi-GB reinstall; a path
    # line in a .pth is appended after the fresh site-packages, and the .pth files inside that
    # folder (such as this checkout's editable install) are not processed, so the project itself
    # can only come from the wheel.
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_sskt_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n", encoding="utf-8")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["SSKT_RUNS_DIR"] = str(tmp_path / "default-runs")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.resources as r, sskt_engine; "
         "print(sskt_engine.__file__); print(r.files('sskt_resources'))"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr
    engine_file, resources_dir = (Path(line).resolve() for line in probe.stdout.splitlines())
    assert engine_file.is_relative_to(site.resolve()), f"sskt_engine imported from {engine_file}"
    assert resources_dir.is_relative_to(site.resolve()), f"sskt_resources found at {resources_dir}"
    assert not resources_dir.is_relative_to(ROOT)

    runs = tmp_path / "runs"
    preset = resources_dir / "presets" / "demo.yaml"
    train = subprocess.run([str(_venv_bin(venv, "sskt")), "train", str(preset), "--set", "train.epochs=1",
                            "--runs-dir", str(runs)],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=900)
    assert train.returncode == 0, train.stdout + train.stderr[-4000:]
    last = train.stdout.strip().splitlines()[-1]
    assert last.startswith("run: "), train.stdout
    run_dir = Path(last[len("run: "):])
    assert run_dir.parent == runs and (run_dir / "summary.json").is_file()
    assert (run_dir / "checkpoints" / "last.pt").is_file()
