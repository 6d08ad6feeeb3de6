"""Date formats shared by both languages: ISO dates (2026-11-25) everywhere, so that a
date reads the same on a Chinese and an English page, in a table and in an export.
Django looks them up per language (``<language>/formats.py``); both take these."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
MONTH_DAY_FORMAT = "m-d"
YEAR_MONTH_FORMAT = "Y-m"
