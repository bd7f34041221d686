"""``python -m standby.cli``."""

from . import main

main()
