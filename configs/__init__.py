"""TOML run configurations shipped with ens (demo, seeds, fkd)."""
