"""What the measuring scripts share: print their figures as JSON, and keep a copy where ``--out`` says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit_json(figures: Any, out: Path | None) -> None:
    """Print ``figures`` as indented JSON; with ``out``, also write it there (folders created)."""
    text = json.dumps(figures, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
