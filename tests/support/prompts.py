"""Prompt rules for tests: a rules file the app reads (PROMPT_RULES)."""
from __future__ import annotations

import json
from pathlib import Path


def rules_file(directory: Path, rules: dict, name: str = "rules.json") -> str:
    """`rules` written as a rules file in `directory`: its path, for PROMPT_RULES."""
    path = directory / name
    path.write_text(json.dumps(rules))
    return str(path)
