"""The agent's local web: the HTTP API on 127.0.0.1, the classroom page, its PIN auth, text and view."""
