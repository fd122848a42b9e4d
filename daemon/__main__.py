"""`python -m daemon` is the `parcelwatch` command."""

from daemon.cli import main

if __name__ == "__main__":  # a spawned worker process (daemon.fanout) imports this module again
    main()
