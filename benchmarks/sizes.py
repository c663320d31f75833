"""Files over 400 lines and functions over 60 lines in a package (issue 11's size rule).

python benchmarks/sizes.py [gpo_local]     exit code 1 when something is over
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE, MAX_FUNCTION = 400, 60


def oversized(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_FILE:
            found.append(f"{path}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION:
                    found.append(f"{path}:{node.lineno}: {node.name} {length} lines")
    return found


if __name__ == "__main__":
    problems = oversized(Path(sys.argv[1] if len(sys.argv) > 1 else "gpo_local"))
    print("\n".join(problems) or "nothing over the limits")
    sys.exit(1 if problems else 0)
