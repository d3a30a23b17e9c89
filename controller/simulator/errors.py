"""How a running application stops early in the simulator."""


class Hungup(Exception):
    """The channel hung up while an application ran."""


class Broken(Exception):
    """uuid_break stopped the running application."""
