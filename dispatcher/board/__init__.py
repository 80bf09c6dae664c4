"""The duty officers' acknowledgement board: server-rendered pages, live over SSE."""
