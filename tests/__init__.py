"""The test suite (layout and markers: tests/README.md)."""

from pathlib import Path

# The repository's root, wherever a test module sits below tests/.
ROOT = Path(__file__).resolve().parent.parent
