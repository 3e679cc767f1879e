"""Handing out work: the feeder step (landed work, roll-up, dispatch of ready beads, stranded
convoys), dispatch of one bead (claim, work branch, the rig's command) and pull claims with
heartbeats.

It may import state/, plan/ and git/. It never imports land/: what follows a feed (the
review gate, landing an epic) is sequenced by gitconvoy.cycle, one layer up.
"""
