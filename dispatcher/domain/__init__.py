"""The domain core: warnings, areas, rosters, plans and the rules that join them.

Nothing in this package imports a framework, touches a database or reads the clock: every
function that needs the time takes it as an argument.
"""
