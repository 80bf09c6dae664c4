"""What a module imports, read from its source (the layer tests: the domain stays pure, the channels
know no database, the board and the API stay apart)."""

from __future__ import annotations

import ast


def imported(source: str, package: str) -> list[str]:
    """Every module the source imports, relative imports made absolute (``from .. import db`` in
    dispatcher.channels gives dispatcher and dispatcher.db)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]  # `from .. import db`
    return names
