"""The node's HTTP surface: app.py builds the application; one module per route family."""
