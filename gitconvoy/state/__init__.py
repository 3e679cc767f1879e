"""The state ref: everything that reads or writes the YAML objects on `convoy/state`.

The model (dataclasses and their validation), ids, the codec (canonical YAML), the layout
(paths, fan-out), the snapshot and its cache, the store (transactions: compare-and-swap of
the ref, the only writer of state objects), the field-by-field merge that the merge driver
and sync share, and the state diff. It may import only gitconvoy.errors and
gitconvoy.faults: everything else in the package stands on it.
"""
