"""``python -m latentdyn`` runs the command line."""

from latentdyn.cli.main import main

if __name__ == "__main__":
    main()
