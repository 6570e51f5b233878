"""Pages of the ticket area (routes on the shared ``web`` blueprint)."""
