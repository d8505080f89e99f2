"""`python -m ensemble` runs the `ens` CLI (handy under torchrun)."""

from ensemble.cli import main

if __name__ == "__main__":
    main()
