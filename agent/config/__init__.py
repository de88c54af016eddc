"""The site config (`site.toml`) and its parts, checked at load: every problem reported at once."""
