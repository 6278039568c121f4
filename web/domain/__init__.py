"""Plain-Python domain rules of the service: enums, state machines, the acting user."""
