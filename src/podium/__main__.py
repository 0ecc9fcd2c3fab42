"""``python -m podium`` runs the CLI."""

from podium.cli.app import main

main()
