"""`python -m gitconvoy …` runs the same CLI as `git convoy …`.

The hook shims call it with the interpreter recorded at install time, which skips git's PATH
search and any version-manager shim in front of `git-convoy` (tens of milliseconds a hook).
"""

from .cli import main

if __name__ == "__main__":
    main()
