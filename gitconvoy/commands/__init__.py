"""The click layer: one module per command group; each command parses its arguments, calls
one function of the layers below (gitconvoy.cycle for anything that lands or feeds), and
prints. Domain decisions do not live here.

It may import every layer below it; nothing imports it except gitconvoy.cli, lazily by name.
"""
