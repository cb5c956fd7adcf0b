"""Domain code of the spotops ops toolkit; ``app.py`` only wires events to these modules."""
