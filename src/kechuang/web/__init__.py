"""Web shell: the base layout, the home page, language switch, translations."""
