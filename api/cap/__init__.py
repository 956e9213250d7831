"""CAP 1.2: safe parsing, schema validation and the warning level."""
from api.cap.parse import (
    LEVEL_ORDER,
    MAX_CAP_BYTES,
    CapAlert,
    CapArea,
    CapError,
    CapInfo,
    CapReference,
    Level,
    level_from_text,
    max_level,
    parse_cap,
)

__all__ = ["LEVEL_ORDER", "MAX_CAP_BYTES", "CapAlert", "CapArea", "CapError", "CapInfo", "CapReference", "Level",
           "level_from_text", "max_level", "parse_cap"]
