"""Tollgate's announcements: `<language>/<prompt>.wav`, made by make_prompts.sh from texts.tsv."""
