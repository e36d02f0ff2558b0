"""Imported first by the tools in this folder: puts tools/ at the front of sys.path, so that they import
the library (sdc) and the pipeline tools of the checkout they are in."""
import sys
from pathlib import Path

TOOLS = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [TOOLS]:
    sys.path.insert(0, TOOLS)
