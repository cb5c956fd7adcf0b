"""``python -m spotops``."""

from spotops.cli.main import main

if __name__ == "__main__":
    main()
