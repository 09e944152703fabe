"""Subcommands of `polarmap`; each module registers its own parsers."""
