"""The files ens reads and writes: one module per file format, the data and run folders.

No imports here: `ens --help` loads `ensemble.io.data_folder` and `ensemble.io.atomic`, and must
not pull in numpy with them.
"""
