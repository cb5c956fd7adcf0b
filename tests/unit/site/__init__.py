"""Tests of the Sanic site (site/website)."""
