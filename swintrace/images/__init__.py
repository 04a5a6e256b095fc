"""Images in: loading and preparing photos, and the teaching shapes data set."""
