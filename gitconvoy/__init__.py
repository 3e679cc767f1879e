"""gitconvoy: work items, dependencies and convoys stored on a git ref."""

__version__ = "0.1.0"
