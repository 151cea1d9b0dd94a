"""Reading and writing the wire formats the dialects share."""
