"""Import-job bridge: polls asynchronous import jobs and pushes their outcome."""

__version__ = "0.2.0"
PROJECT_URL = "https://github.com/import-job-bridge/import-job-bridge"
# Sent on every upstream and webhook request: operators on the other side can tell
# who is calling and which version.
USER_AGENT = f"import-job-bridge/{__version__} (+{PROJECT_URL})"
