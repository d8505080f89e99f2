"""Click commands of the `ens` CLI, one module each."""
