"""The command line: `import-bridge` (and `bridge`)."""

from bridge.cli.main import main

__all__ = ["main"]
