"""Data and training components. Each module here defines components with `@register`; they are
discovered automatically."""
