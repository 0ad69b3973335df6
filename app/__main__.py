"""``python -m app`` opens SSKT Studio."""

import sys

from app.main import main

sys.exit(main())
