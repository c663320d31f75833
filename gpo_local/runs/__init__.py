"""Runs: where a run's whole state lives on disk, so that it can be reproduced and resumed.

`directory` (the run directory, its config and records, the home folder), `storage` (file-system
trouble as one line, the one atomic-write helper), `locks` (one process per run), `rundata` (a run
read back for `show` and `report`), `health` (each run file classified as missing, torn, damaged or
of the wrong shape, with the command that repairs it) and `faults` (named kill points for the
crash-safety tests).
Imports only the core modules (`gpo_local.core`, `gpo_local.errors`) and the task layer.
"""
