"""HA backends: one package per coordination store, each implementing the interfaces of ``standby.ha``."""
