"""`python -m node.cli`: the same command line as the `kpledger` console script."""

from node.cli.main import main

if __name__ == "__main__":
    main()
