"""Hardware profiles: data only (TOML profiles and their transcripts)."""
