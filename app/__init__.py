"""SSKT Studio's desktop GUI (PySide6 + pyqtgraph). Thin: it shows and controls; the engine computes."""
