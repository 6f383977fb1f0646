"""Settings read from the environment, one class per environment, validated at start-up."""
from config.settings import (
    ConfigError,
    DevelopmentSettings,
    ProductionSettings,
    Settings,
    TestSettings,
    load_settings,
)

__all__ = [
    "ConfigError",
    "DevelopmentSettings",
    "ProductionSettings",
    "Settings",
    "TestSettings",
    "load_settings",
]
