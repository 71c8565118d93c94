"""Target database connectors (one per engine behind one interface)."""
