"""zhujian (主检): drafts the chief examiner's report of a health checkup, with evidence for every conclusion."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zhujian")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
