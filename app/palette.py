"""Light or dark: the colours of the style sheet and the plots, taken from the application's palette.

The desktop decides (Qt's colour scheme, or the palette a platform theme hands to Qt); the app
only reads the palette it was given. Where Qt reports a dark scheme but the style still paints a
light palette (Fusion without a platform theme), or the person chose a theme in Preferences, the
app sets a dark (or light) palette itself. Everything else (style sheet, pyqtgraph backgrounds,
axes, legends, hover boxes) is derived from the palette in use, so both always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

THEMES = ("system", "light", "dark")  # what Preferences offers


def is_dark(palette: QtGui.QPalette | None = None) -> bool:
    """Whether the palette paints light text on a dark window (what the person sees, whatever
    the colour scheme says)."""
    palette = palette or QtWidgets.QApplication.palette()
    window = palette.color(QtGui.QPalette.ColorRole.Window)
    text = palette.color(QtGui.QPalette.ColorRole.WindowText)
    return window.lightness() < text.lightness()


@dataclass(frozen=True)
class PlotColors:
    """The colours every pyqtgraph view uses, light or dark."""

    background: str
    title: str  # plot titles, legend labels
    text: str  # tick labels
    muted: str  # axis labels, hints drawn in a plot
    axis: str  # axis lines
    hover_fill: tuple[int, int, int, int]  # the hover read-out's box (RGBA)
    hover_border: str
    dot_outline: str  # the ring around a marker, so markers on crossing lines stay apart
    placeholder: str  # the "Press Start" box over empty plots: its style sheet


LIGHT_PLOTS = PlotColors("#ffffff", "#333333", "#444444", "#666666", "#999999", (255, 255, 255, 235), "#bbbbbb",
                         "#ffffff", "color: #555555; background: rgba(255, 255, 255, 225); padding: 10px;"
                         " border: 1px solid #dddddd; border-radius: 6px;")
DARK_PLOTS = PlotColors("#1e1f22", "#e2e4e8", "#c9ccd1", "#a4a8ae", "#6b7078", (40, 42, 46, 235), "#5c6068",
                        "#1e1f22", "color: #c9ccd1; background: rgba(40, 42, 46, 225); padding: 10px;"
                        " border: 1px solid #50545a; border-radius: 6px;")


def plot_colors(palette: QtGui.QPalette | None = None) -> PlotColors:
    return DARK_PLOTS if is_dark(palette) else LIGHT_PLOTS


# Tokens of resources/style.qss ("@name@"): the colours that differ between light and dark.
LIGHT_STYLE = {
    "text": "#24292f", "muted": "#5f6368", "accent": "#0b5cad", "error": "#c62828", "error-bg": "#fff1f1",
    "error-border": "#d32f2f", "line": "#d5d9de", "bar": "#f6f8fa", "button": "#ffffff", "button-border": "#c4c9cf",
    "disabled": "#9aa0a6", "progress-bg": "#ffffff", "chunk": "#8cc4f2", "progress-text": "#1f2328",
    "box-line": "#e1e4e8",
}
DARK_STYLE = {
    "text": "#e6e8eb", "muted": "#a9adb3", "accent": "#7cb8ff", "error": "#ff8a80", "error-bg": "#3d2325",
    "error-border": "#ef5350", "line": "#3c4046", "bar": "#26282c", "button": "#33363b", "button-border": "#50545a",
    "disabled": "#7b8087", "progress-bg": "#1e1f22", "chunk": "#2f5f8f", "progress-text": "#f0f2f4",
    "box-line": "#3c4046",
}


def style_colors(palette: QtGui.QPalette | None = None) -> dict[str, str]:
    return DARK_STYLE if is_dark(palette) else LIGHT_STYLE


def fill_style_sheet(template: str, palette: QtGui.QPalette | None = None) -> str:
    """The style sheet with its ``@token@`` colours for this palette."""
    sheet = template
    for name, color in style_colors(palette).items():
        sheet = sheet.replace(f"@{name}@", color)
    return sheet


def dark_palette() -> QtGui.QPalette:
    """A dark Fusion palette, for a dark scheme the style does not paint by itself."""
    role, group = QtGui.QPalette.ColorRole, QtGui.QPalette.ColorGroup
    palette = QtGui.QPalette()
    colors = {
        role.Window: "#2b2d31", role.WindowText: "#e6e8eb", role.Base: "#1e1f22", role.AlternateBase: "#26282c",
        role.ToolTipBase: "#33363b", role.ToolTipText: "#e6e8eb", role.Text: "#e6e8eb", role.Button: "#33363b",
        role.ButtonText: "#e6e8eb", role.BrightText: "#ff6b6b", role.Link: "#7cb8ff", role.LinkVisited: "#b39ddb",
        role.Highlight: "#2f6fb3", role.HighlightedText: "#ffffff", role.PlaceholderText: "#8b9096",
        role.Light: "#4a4d53", role.Midlight: "#3c3f44", role.Mid: "#2a2c30", role.Dark: "#18191b",
        role.Shadow: "#000000",
    }
    for color_role, color in colors.items():
        palette.setColor(color_role, QtGui.QColor(color))
    for color_role in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, color_role, QtGui.QColor("#7b8087"))
    return palette


def wanted_palette(app: QtWidgets.QApplication, theme: str = "system") -> QtGui.QPalette | None:
    """The palette to set for ``theme``; None: keep the one the desktop gave (it already matches)."""
    scheme = app.styleHints().colorScheme()
    standard = app.style().standardPalette()
    if theme == "dark" or (theme == "system" and scheme == QtCore.Qt.ColorScheme.Dark):
        return None if is_dark(app.palette()) else dark_palette()
    if theme == "light" or (theme == "system" and scheme == QtCore.Qt.ColorScheme.Light):
        return None if not is_dark(app.palette()) else (standard if not is_dark(standard) else QtGui.QPalette())
    return None


class ThemeFollower(QtCore.QObject):
    """Keeps the style sheet in step with the palette: re-filled when the desktop switches between
    light and dark (Qt's ``colorSchemeChanged``) or a palette is set. Widgets that draw their own
    colours (the plots) follow their ``PaletteChange`` events."""

    def __init__(self, app: QtWidgets.QApplication, template: str, theme: str = "system"):
        super().__init__(app)
        self.app = app
        self.template = template
        self.theme = theme if theme in THEMES else "system"
        self._sheet_dark: bool | None = None
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: self.apply())
        app.installEventFilter(self)
        self.apply()

    def set_theme(self, theme: str) -> None:
        self.theme = theme if theme in THEMES else "system"
        if self.theme == "system":
            self.app.setPalette(self.app.style().standardPalette())  # the desktop's, again
        self.apply()

    def apply(self) -> None:
        palette = wanted_palette(self.app, self.theme)
        if palette is not None:
            self.app.setPalette(palette)
        self._fill_sheet()

    def _fill_sheet(self) -> None:
        dark = is_dark(self.app.palette())
        if dark != self._sheet_dark and self.template:
            self._sheet_dark = dark
            self.app.setStyleSheet(fill_style_sheet(self.template, self.app.palette()))

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt API)
        if obj is self.app and event.type() == QtCore.QEvent.Type.ApplicationPaletteChange:
            QtCore.QTimer.singleShot(0, self._fill_sheet)  # not inside the palette change itself
        return False


def follower(app: QtWidgets.QApplication | None = None) -> ThemeFollower | None:
    app = app or QtWidgets.QApplication.instance()
    return app.findChild(ThemeFollower) if app is not None else None


class FollowsPalette:
    """Mixin, before ``QWidget`` in the bases, for a widget drawn in ``PlotColors``: when the
    palette changes (a dark desktop, the theme switched in Preferences) and its plot colours
    differ, store them in the attribute ``palette_attr`` names and call ``_apply_colors()``."""

    palette_attr = "colors"

    def changeEvent(self, event: QtCore.QEvent) -> None:  # noqa: N802 (Qt API)
        if event.type() == QtCore.QEvent.Type.PaletteChange:
            colors = plot_colors(self.palette())
            if colors != getattr(self, self.palette_attr, None):
                setattr(self, self.palette_attr, colors)
                self._apply_colors()
        super().changeEvent(event)
