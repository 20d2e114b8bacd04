"""Sub-commands of the `twn` CLI, one module each."""
