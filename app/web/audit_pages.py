"""Pages of the audit area (routes on the shared ``web`` blueprint)."""
