"""Landing work: the refinery queue, the in-memory merge + check + compare-and-swap + push of
one landing, integration branches, the review gate and check commands
(formulas, which workers follow too, are read in gitconvoy.git.formulas).

Inside the folder the order is one way: refinery ← integration ← review. It may import
state/, plan/ and git/; never flow/: after a landing the refinery returns what it landed and
gitconvoy.cycle runs the feeder.
"""
