"""The reporting room: records become the markdown leaderboard (`leaderboard`, with its tables'
rows in `rows`, cell formats in `cells` and the remedy-vs-control table in `remedies`) and its
accuracy-vs-ratio plots (`plots`)."""
