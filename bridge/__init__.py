"""Import-job bridge: polls asynchronous import jobs and pushes their outcome."""

__version__ = "0.2.0"
