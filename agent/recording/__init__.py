"""Recording lessons in the agent: the service, finishing after a crash, resource mode, sound, upload, delivery."""
