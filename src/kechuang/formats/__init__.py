"""Date formats shared by both languages: ISO dates (2026-11-25) everywhere, so that a
date reads the same on a Chinese and an English page, in a table and in an export."""
