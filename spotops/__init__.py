"""spotops: the command line behind the Makefile."""
