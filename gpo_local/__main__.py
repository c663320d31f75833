"""`python -m gpo_local`: the command line, as the `gpo-local` script runs it."""

from gpo_local.app.cli import main

main()
