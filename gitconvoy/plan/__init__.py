"""Plan logic over a snapshot: the graph (ready, blocked, cycles), waves, staging, bead
edits inside a transaction, epic roll-up, targets and rigs, convoys.

Mostly pure functions over the state's dataclasses, which is what makes them easy to test
with hypothesis. It may import gitconvoy.state (and errors/faults) and nothing that talks to
git or runs commands: no git/, flow/, land/.
"""
