"""Members as staff see them: search, one member's record, CSV import and export."""
