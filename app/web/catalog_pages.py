"""Pages of the catalog area (routes on the shared ``web`` blueprint)."""
