"""Importers: public datasets converted to Fidelio's own events (the one event contract)."""
