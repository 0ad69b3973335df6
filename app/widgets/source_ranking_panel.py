"""The source section's Rank action: scores every source of the preset before training, in the
background (``sskt_engine.source_ranking.rank_sources`` on the GUI worker), and shows them.

A table, best source first (LEEP, LogME, NCE; higher is better), the warnings (soft labels close
to uniform, images much smaller than a source's native side), and an inspect view of the
selected source: its soft labels' mean max probability and entropy at every side read, and the
classes it names most often. ``scores_ready`` hands each source's one-line summary (by its
position in the preset) to the sources list. Every number shown is computed by the engine;
this widget only formats it.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6 import QtCore, QtWidgets

from app.worker import Worker, WorkerError, start_worker

# Narrow on purpose (the setup panel is a side column): what each source sees is in the inspect view.
COLUMNS = ("#", "source", "LEEP", "LogME", "NCE")


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "–"


def score_summary(entry: Any, position: int) -> str:
    """One line for the sources list: ``#1 · LEEP -0.63 · LogME 0.38 · NCE -0.08`` (or the problem)."""
    if entry.error:
        return "cannot be read: " + entry.error
    scores = " · ".join(f"{title} {_number(entry.scores.get(key), 2)}"
                        for key, title in (("leep", "LEEP"), ("logme", "LogME"), ("nce", "NCE")))
    warn = " · ⚠" if entry.warnings else ""
    return f"#{position} · {scores}{warn}"


def inspection_html(entry: Any) -> str:
    """The inspect view of one ranked source (plain values from the engine, formatted)."""
    if entry.error:
        return f"<b>{entry.name}</b>: cannot be read: {entry.error}"
    rows = "".join(
        f"<tr><td align='right'>{r.size} px</td><td>{', '.join(r.roles)}</td><td align='right'>{r.images}</td>"
        f"<td align='right'>{r.max_prob_mean:.4f}</td><td align='right'>{r.entropy_mean:.3f}</td>"
        f"<td align='right'>{r.entropy_ratio:.2f}</td></tr>" for r in entry.readings)
    top = ", ".join(f"{name} {100 * share:.0f}%" for name, share in entry.inspection.top_classes)
    warnings = "".join(f"<p style='color:#b26a00'>⚠ {w}</p>" for w in entry.warnings)
    notes = "".join(f"<p><i>{n}</i></p>" for n in entry.notes)
    return (f"<b>{entry.name}</b>: {entry.num_classes} classes, native side {entry.native_size} px, fed "
            f"{entry.preset_size} px<br><table cellspacing='6'><tr><th>side</th><th>read as</th><th>images</th>"
            f"<th>mean max prob</th><th>entropy</th><th>/ max</th></tr>{rows}</table>"
            f"Most frequent classes at {entry.preset_size} px: {top or '–'}{warnings}{notes}")


class SourceRankingPanel(QtWidgets.QWidget):
    """Rank button, status line, scores table, warnings and the inspect view (see module doc)."""

    scores_ready = QtCore.Signal(object)  # {index of the source in the preset: one-line summary}

    def __init__(self, config_source: Callable[[], Any], parent: QtWidgets.QWidget | None = None,
                 rank: Callable[..., Any] | None = None):
        """``config_source()``: the preset as a validated ``ExperimentConfig``, or None while it has
        errors. ``rank``: the engine's ``rank_sources`` (a test may pass a slower or failing one)."""
        super().__init__(parent)
        self._config_source = config_source
        self._rank = rank
        self._worker: Worker | None = None
        self.ranking: Any = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        row = QtWidgets.QHBoxLayout()
        self.rank_button = QtWidgets.QPushButton("Rank sources")
        self.rank_button.setObjectName("rankSourcesButton")
        self.rank_button.setToolTip("Score every source on the target's labelled images before training "
                                    "(LEEP, LogME, NCE: higher is better) and inspect what each one sees")
        self.rank_button.clicked.connect(self.start)
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.status = QtWidgets.QLabel("")
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        row.addWidget(self.rank_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.status, 1)
        layout.addLayout(row)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("sourceRankingTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)  # long names elide, no scrolling
        self.table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.currentCellChanged.connect(lambda row, *_: self._inspect(row))
        self.table.hide()
        layout.addWidget(self.table)

        self.inspect = QtWidgets.QLabel()
        self.inspect.setObjectName("sourceInspection")
        self.inspect.setWordWrap(True)
        self.inspect.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.inspect.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inspect.hide()
        layout.addWidget(self.inspect)

    # -- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self) -> None:
        if self.running:
            return
        config = self._config_source()
        if config is None:
            self.status.setText("Fix the preset's errors first: ranking reads its data, sources and temperature.")
            return
        if not config.sources:
            self.status.setText("Add a source first: there is nothing to rank.")
            return
        rank = self._rank
        if rank is None:
            from sskt_engine.source_ranking import rank_sources as rank

        def work(control) -> Any:
            return rank(config, on_progress=lambda text, fraction: control.yield_value((text, fraction)),
                        stop_event=control.quit_event)

        self.rank_button.setEnabled(False)
        self.stop_button.show()
        self.status.setText("Reading the labelled images…")
        self._worker = start_worker(work, takes_control=True, yielded=self._progress, returned=self.show_ranking,
                                    errored=self._failed, finished=self._finished, name="sskt-rank-sources")

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self.status.setText("Stopping after this source…")

    def _progress(self, value: tuple[str, float]) -> None:
        text, fraction = value
        self.status.setText(f"{text} ({100 * fraction:.0f}%)")

    def _failed(self, error: WorkerError) -> None:
        self.status.setText(f"Ranking failed: {error.sentence}")

    def _finished(self) -> None:
        self._worker = None
        self.rank_button.setEnabled(True)
        self.stop_button.hide()

    # -- showing -------------------------------------------------------------------------
    def show_ranking(self, ranking: Any) -> None:
        self.ranking = ranking
        entries = list(ranking.entries)
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            values = [str(row + 1) if not entry.error else "–", entry.name]
            if entry.error:
                values += ["–"] * 3
            else:
                values += [_number(entry.scores.get(k)) for k in ("leep", "logme", "nce")]
            for column, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(("⚠ " if column == 1 and entry.warnings else "") + text)
                if column != 1:
                    item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                if column == 1 and (entry.warnings or entry.error):
                    item.setToolTip("\n".join(entry.warnings) or entry.error)
                self.table.setItem(row, column, item)
        self.table.show()
        height = self.table.horizontalHeader().height() + sum(self.table.rowHeight(r) for r in range(len(entries)))
        self.table.setFixedHeight(height + 2 * self.table.frameWidth() + 2)
        warned = sum(1 for e in entries if e.warnings)
        self.status.setText(f"{ranking.num_images} labelled images, temperature {ranking.temperature:g}, "
                            f"{ranking.seconds:.1f} s; sorted by {ranking.sort_key.upper()}, higher is better"
                            + (f"; {warned} source(s) with a warning (⚠)" if warned else ""))
        self.scores_ready.emit({e.index: score_summary(e, position + 1) for position, e in enumerate(entries)})
        if entries:
            self.table.selectRow(0)
            self._inspect(0)

    def _inspect(self, row: int) -> None:
        if self.ranking is None or not (0 <= row < len(self.ranking.entries)):
            self.inspect.hide()
            return
        self.inspect.setText(inspection_html(self.ranking.entries[row]))
        self.inspect.show()

    def clear(self) -> None:
        """The sources changed: the scores shown belong to another list."""
        self.ranking = None
        self.table.setRowCount(0)
        self.table.hide()
        self.inspect.hide()
        if not self.running:
            self.status.setText("")
