"""Subcommands that live in their own modules (see daemon.cli.PLUGGED_COMMANDS)."""
