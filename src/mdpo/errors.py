"""The one exception type users see: its message is printed as a single line by the CLI."""


class MdpoError(Exception):
    """A problem with the user's input (config, game name, run folder, checkpoint)."""
