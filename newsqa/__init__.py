"""newsqa: question answering over news articles, with citations that say it.

The package's parts, in the order data flows: store (shared by both paths), ingest (write path),
service (read path and its HTTP/Slack adapters), eval (quality and speed), and cli.py on top of all.
"""
