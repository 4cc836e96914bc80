"""The `kpledger` command line: `main` is the console script (pyproject: node.cli:main)."""

from node.cli.main import main

__all__ = ["main"]
