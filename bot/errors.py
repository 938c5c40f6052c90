"""`SettingsError` on its own, so that code which only reports it (every CLI command)
need not import the settings model and pydantic with it."""


class SettingsError(Exception):
    """A configuration problem, worded for the person running the command."""


__all__ = ["SettingsError"]
