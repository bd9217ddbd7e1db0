"""``python -m latentdyn`` runs the command line."""

from latentdyn.cli import main

if __name__ == "__main__":
    main()
