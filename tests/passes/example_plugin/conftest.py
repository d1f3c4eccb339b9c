"""Lets Ember's own test run collect this package's tests without installing it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
