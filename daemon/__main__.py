"""`python -m daemon` is the `parcelwatch` command."""

from daemon.cli import main

main()
