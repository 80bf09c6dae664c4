"""The HTTP API: its own dependencies (agency keys, the caller, roles), error answers, body limits and
one router per resource. The app that mounts it with the board is made in ``dispatcher.web.app``."""
