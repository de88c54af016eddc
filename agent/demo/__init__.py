"""The demo: simulated devices first, then a local broker, classroom-central and two rooms (imports `central`)."""
