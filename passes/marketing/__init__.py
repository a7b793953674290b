"""Campaigns: offers sent to a segment of a program's members, now or at a set time."""
