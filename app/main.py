"""Entry point of ``sskt-studio`` and ``python -m app``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

APP_NAME = "SSKT Studio"


def configure_application(app, theme: str = "system") -> None:
    """Style, icon and plot defaults shared by the real app, the tests and the benchmark. The
    style sheet and the plots follow the desktop's light or dark palette (``app.palette``);
    ``theme`` ("light", "dark") overrides it, as Preferences does."""
    import pyqtgraph as pg

    from app.palette import ThemeFollower, follower, plot_colors
    from app.resources import app_icon, style_sheet

    app.setStyle("Fusion")
    app.setWindowIcon(app_icon())
    existing = follower(app)
    if existing is None:
        ThemeFollower(app, style_sheet(), theme)
    else:
        existing.set_theme(theme)
    colors = plot_colors(app.palette())
    pg.setConfigOptions(antialias=True, background=colors.background, foreground=colors.text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sskt-studio", description="Set up, run and watch knowledge-transfer "
                                     "experiments.")
    parser.add_argument("preset", nargs="?", type=Path, help="a preset file to open")
    parser.add_argument("--runs-dir", type=Path, help="folder holding the runs (remembered)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from app.system_libraries import missing_libraries_sentence, missing_xcb_packages

    missing = missing_xcb_packages()
    if missing:  # Qt would abort (exit 134) with a page about plugins: one sentence instead
        print(missing_libraries_sentence(missing), file=sys.stderr)
        return 2

    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from app.settings import AppSettings

    QtCore.QCoreApplication.setOrganizationName("SSKT")
    QtCore.QCoreApplication.setApplicationName(APP_NAME)
    QtWidgets.QApplication.setDesktopFileName("sskt-studio")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    settings = AppSettings()
    configure_application(app, settings.theme)
    from app.main_window import apply_thread_count

    apply_thread_count(settings.threads)
    if args.runs_dir:
        settings.runs_root = args.runs_dir.expanduser().resolve()
    from app.gc_guard import MainThreadGarbageCollector

    collector = MainThreadGarbageCollector(parent=app).start()
    from sskt_engine.plugins import load_plugins

    plugin_warnings = load_plugins()  # before the window: plugin architectures must be in the registry
    window = MainWindow(settings, preset=args.preset)
    for warning in plugin_warnings:
        window.log.add(f"plugin: {warning}", "warning")
    window.show()
    # Ctrl+C in the terminal closes the window the normal way (asking about a running run or
    # unsaved changes). Python only sees the signal when it runs, hence the idle timer.
    signal.signal(signal.SIGINT, lambda *_: QtCore.QTimer.singleShot(0, window.close))
    wake = QtCore.QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(250)
    try:
        return app.exec()
    finally:
        collector.stop()


if __name__ == "__main__":
    sys.exit(main())
