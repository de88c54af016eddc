"""The command table (one entry per command; MQTT, the local API and the CLI go through it) and the commands."""
