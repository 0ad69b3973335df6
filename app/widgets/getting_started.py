"""Help → Getting Started: the demo experiment, step by step, inside the app."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

STEPS = """
<h3>Getting started: the demo in five minutes</h3>
<p>The demo trains a small network on generated shapes, with one source model that already knows
similar shapes: SSKT (knowledge transfer from source models) on a CPU in a few minutes.</p>
<ol>
<li><b>Open the demo experiment</b> (the button below, or File → Built-in Presets → demo). The
<i>Experiment</i> panel on the left shows its settings: the <i>Source models</i> that lend their
knowledge, the <i>Target network</i> being trained, the <i>Dataset</i>, the <i>Method</i> and
<i>Training</i>. A field with a problem is marked in red where it is, and Start says which.</li>
<li><b>Press Start</b> ({start}). The bar above the plots shows the epoch, the speed and the time
left. Stop ({stop}) ends the run after the current step; Resume ({resume}) continues it later.</li>
<li><b>Watch the live curves.</b> Loss, accuracy, the sources' auxiliary losses and the learning rate
grow as the run trains. Hover a plot to read the numbers under the mouse.</li>
<li><b>See the results.</b> When the run ends, the <i>Results</i> tab shows accuracy per class, the
confusion matrix (each row in percent of its true class) and validation images with their predicted
labels. Double-click any run in the <i>Runs</i> panel to see its results again.</li>
<li><b>Compare runs.</b> Select several runs in the Runs panel to draw their curves over the live
ones. <i>Run → Compare Methods…</i> ({compare}) trains the experiment with several methods and seeds
and tabulates mean ± std.</li>
<li><b>Export the trained network</b> from the Results tab (Export model…) as pt, safetensors,
TorchScript or ONNX; the file is loaded back and checked before the dialog reports success.</li>
</ol>
<p>On your own images: set <i>Dataset</i> to <code>imagefolder</code> and its folder to one holding
<code>train/&lt;class&gt;/*.png</code> and <code>val/&lt;class&gt;/*.png</code>. The same preset trains
from the command line with <code>sskt train preset.yaml</code>.</p>
"""


class GettingStartedDialog(QtWidgets.QDialog):
    open_demo_requested = QtCore.Signal()

    def __init__(self, keys: dict[str, str], parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Getting Started")
        self.setObjectName("gettingStarted")
        layout = QtWidgets.QVBoxLayout(self)
        self.text = QtWidgets.QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setHtml(STEPS.format(**{name: keys.get(name, "") for name in
                                          ("start", "stop", "resume", "compare")}))
        layout.addWidget(self.text, 1)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.demo_button = buttons.addButton("Open the demo experiment",
                                             QtWidgets.QDialogButtonBox.ButtonRole.ActionRole)
        self.demo_button.clicked.connect(self.open_demo_requested)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 560)
