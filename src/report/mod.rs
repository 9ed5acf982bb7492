//! Leaderboards and tables printed from the store (table, markdown, csv, json).
