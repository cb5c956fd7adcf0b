"""make loadtest against the real site on loopback."""
