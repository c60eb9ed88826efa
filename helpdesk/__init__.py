"""The operators' command line (``helpdesk``). Only the CLI lives here; the work is elsewhere."""
