"""drivers/protocol."""
