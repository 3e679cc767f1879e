"""`python -m gitconvoy …` runs the same CLI as `git convoy …`.

The hook shims call it with the interpreter recorded at install time, which skips git's PATH
search and any version-manager shim in front of `git-convoy` (tens of milliseconds a hook).
`hook` itself skips click: its cost is paid on the user's git command.
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["hook"] and len(sys.argv) > 2:
        from gitconvoy.hookrun import main_hook

        sys.exit(main_hook(sys.argv[2], sys.argv[3:]))
    from gitconvoy.cli import main

    main()
