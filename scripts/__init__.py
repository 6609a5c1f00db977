"""Command-line tools: the local stack launcher, the demo data source and publisher, the mail sink."""
