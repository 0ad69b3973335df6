"""Screenshots for the README and the AppStream metadata, taken from the real app on a real run.

    xvfb-run -s "-screen 0 1600x1000x24" python packaging/screenshot.py [--epochs 8]
        [--study STUDY_DIR] [--out-dir resources/screenshots]

Opens the app as a newcomer sees it (fresh settings: the demo preset loads on first launch),
presses Start, waits until ``--epochs`` epochs of the demo have ended, and saves
``main-window.png``. With ``--study`` (a folder written by ``sskt compare``) it also opens the
Compare dialog on that study and saves ``compare.png``. Needs a display (Xvfb will do): the
offscreen platform renders no window decorations and is not what a user sees.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="demo epochs to wait for before the shot")
    parser.add_argument("--study", type=Path, help="a study folder to show in the Compare dialog")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "resources" / "screenshots")
    parser.add_argument("--size", default="1600x1000", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--theme", default="system", choices=("system", "light", "dark"),
                        help="the palette to shoot in (dark: as on a dark desktop)")
    parser.add_argument("--name", default="main-window.png", help="file name of the main window's shot")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for training (0: PyTorch's choice)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    scratch = Path(tempfile.mkdtemp(prefix="sskt-shot-"))
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")  # first launch: the demo preset opens
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")
    sys.path.insert(0, str(ROOT))

    from PySide6 import QtCore, QtWidgets

    from app.main import APP_NAME, configure_application
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from sskt_engine.events import EpochEnd

    QtCore.QCoreApplication.setOrganizationName("SSKT")
    QtCore.QCoreApplication.setApplicationName(APP_NAME)
    app = QtWidgets.QApplication([sys.argv[0]])
    configure_application(app, args.theme)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    window = MainWindow(AppSettings(scratch / "settings.json"), runs_root=scratch / "runs")
    window.resize(width, height)
    window.show()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ended = []

    def on_event(event) -> None:
        if isinstance(event, EpochEnd):
            ended.append(event.epoch)
            if len(ended) == args.epochs:
                QtCore.QTimer.singleShot(1500, shoot)  # let the 30 Hz plot timer and the layout settle

    def when_idle(callback) -> None:
        """Run ``callback`` once the stopped run's thread has ended (quitting under it would abort)."""
        if window.controller.is_running():
            QtCore.QTimer.singleShot(200, lambda: when_idle(callback))
        else:
            callback()

    def shoot() -> None:
        path = args.out_dir / args.name
        window.grab().save(str(path))
        print(f"saved {path}", flush=True)
        window.stop_run()
        if args.study:
            dialog = window.open_compare()
            dialog.resize(1000, 820)
            # the study is read in a worker thread: shoot once it is shown (and laid out)
            dialog.study_opened.connect(lambda *_: QtCore.QTimer.singleShot(1000, lambda: shoot_dialog(dialog)))
            if dialog.open_study(args.study):
                return
        when_idle(app.quit)

    def shoot_dialog(dialog) -> None:
        path = args.out_dir / "compare.png"
        dialog.grab().save(str(path))
        print(f"saved {path}", flush=True)
        when_idle(app.quit)

    window.local_controller.event.connect(on_event)
    QtCore.QTimer.singleShot(1000, window.start_run)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main())
