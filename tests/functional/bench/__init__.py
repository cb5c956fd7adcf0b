"""make bench: every part in its short mode, against real processes on loopback."""
