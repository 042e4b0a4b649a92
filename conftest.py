"""Loads the grading plugin: `pytest` checks the package in assignments/, `pytest --impl=FOLDER` the one in FOLDER."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))  # kvchecks, when the kit is not installed

pytest_plugins = ["kvchecks.plugin"]
