"""Public registry of all standby configuration options: ``options.HA_TYPE``, ``ALL_OPTIONS``, ``find_option``.

The definitions live in ``standby.config._options``; this module re-exports them under the public name.
"""

from standby.config._options import *  # noqa: F403
from standby.config._options import __all__ as __all__
