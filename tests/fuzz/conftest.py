"""The fuzz tests import their mutators and seeds from ``mutations.py`` beside them."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
