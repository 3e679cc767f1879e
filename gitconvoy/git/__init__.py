"""Talking to git beyond the state objects: the one git-CLI wrapper (remotes, worktrees,
credentials, one environment-cleaning rule), hook install and the hook gate, the watch list,
sync of the state ref with a remote, the plugin's git settings, and trusted configuration
(commands come from local git config or committed project config, never from the state),
formulas included (read from the trusted branch, the user's folder and the built-ins).

It may import gitconvoy.state; never plan/, flow/, land/ or anything above them.
"""
