"""Typed configuration of standby, after Flink's ``ConfigOption`` / ``Configuration``.

```python
from standby.config import Configuration, options

conf = Configuration.load("conf/config.yaml", dynamic=["-Dhigh-availability.type=zookeeper"])
conf.get(options.HA_TYPE)            # 'zookeeper'
conf.get(options.HEARTBEAT_TIMEOUT)  # timedelta(seconds=50)
```
"""

from standby.config import options as options
from standby.config._configuration import CONFIG_ENV_VAR as CONFIG_ENV_VAR
from standby.config._configuration import CONFIG_FILE_NAME as CONFIG_FILE_NAME
from standby.config._configuration import Configuration as Configuration
from standby.config._configuration import validate as validate
from standby.config._docs import render_options_markdown as render_options_markdown
from standby.config._errors import ConfigurationError as ConfigurationError
from standby.config._option import ConfigOption as ConfigOption
from standby.config._option import is_sensitive_key as is_sensitive_key
from standby.config._parsing import MemorySize as MemorySize
from standby.config._parsing import format_duration as format_duration
from standby.config._parsing import format_list as format_list
from standby.config._parsing import format_map as format_map
from standby.config._parsing import parse_bool as parse_bool
from standby.config._parsing import parse_duration as parse_duration
from standby.config._parsing import parse_list as parse_list
from standby.config._parsing import parse_map as parse_map
from standby.config._parsing import parse_memory as parse_memory
from standby.config._parsing import parse_port_range as parse_port_range

__all__ = [
    "CONFIG_ENV_VAR",
    "CONFIG_FILE_NAME",
    "ConfigOption",
    "Configuration",
    "ConfigurationError",
    "MemorySize",
    "format_duration",
    "format_list",
    "format_map",
    "is_sensitive_key",
    "options",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_map",
    "parse_memory",
    "parse_port_range",
    "render_options_markdown",
    "validate",
]
