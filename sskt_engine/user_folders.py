"""Where a user's own files live: the config folder and the user models folder in it.

A leaf (imports nothing of the engine), so that the preset parser can name the models folder in
an error message without importing the plugin loader, which imports every registering package.
"""

from __future__ import annotations

import os
from pathlib import Path

import appdirs

CONFIG_DIR_ENV = "SSKT_STUDIO_CONFIG_DIR"


def user_config_dir() -> Path:
    """The app's config folder (the same one the GUI's settings use)."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(appdirs.user_config_dir("sskt-studio", "SSKT"))


def user_models_dir() -> Path:
    """Where users put ``.py`` files that register architectures (it may not exist yet)."""
    return user_config_dir() / "models"
