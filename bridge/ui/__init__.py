"""The operator console at /ui: server-rendered HTML, no JavaScript build step."""
