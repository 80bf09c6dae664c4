"""The web edge: what the HTTP API (``dispatcher.api``) and the duty officers' board
(``dispatcher.board``) share — request dependencies, the unit of work, the sign-in check
(``deps``) — and the one app that mounts both (``app``). Neither edge imports the other."""
