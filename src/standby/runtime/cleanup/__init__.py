"""Job cleanup with retries (Flink's ``runtime/dispatcher/cleanup``)."""

from ._cleanup import CleanupRetriesExhaustedError as CleanupRetriesExhaustedError
from ._cleanup import CleanupStep as CleanupStep
from ._cleanup import DefaultResourceCleaner as DefaultResourceCleaner
from ._cleanup import RetryStrategy as RetryStrategy
from ._cleanup import cleanup_checkpoint_resources as cleanup_checkpoint_resources
from ._cleanup import retry_with_delay as retry_with_delay
